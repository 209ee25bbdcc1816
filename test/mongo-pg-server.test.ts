/**
 * PostgreSQL → MongoDB against a real MongoDB replica set named by MONGODB_URL (skipped without one, saying so; no
 * server can be had on the machines this is developed on, so these have NOT run here):
 * - a table of embedded PostgreSQL with indexes, unique constraints (nullable columns with repeated NULLs), a partial
 *   index and jsonb values with `$`-prefixed keys is copied through the bridged target; finalize builds the
 *   translated indexes (listIndexes shows them: key order, unique, partial filters), with the warnings returned;
 * - the same rows applied through the change path (MongoChangeTarget behind pgChangesToMongo) are stored as the
 *   same BSON bytes as the snapshot stored (raw documents compared).
 */
import { Readable } from 'node:stream';
import { BSON, MongoClient, type Document } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoChangeTarget } from '../src/adapters/mongodb/change-target.js';
import { MongoSnapshotTarget } from '../src/adapters/mongodb/snapshot-target.js';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { pgChangesToMongo, pgRowsToMongo } from '../src/core/codec/bridge.js';
import { copiedColumnsOf } from '../src/core/codec/columns.js';
import { pgIndexesToMongo } from '../src/core/codec/pg-to-mongo-indexes.js';
import { copyTextToRows } from '../src/core/codec/row-streams.js';
import { tableKey, type TableSchema } from '../src/core/model.js';
import type { RowImage } from '../src/core/ports/change-source.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { DOLLAR_JSONB } from './mongo-pg-values.js';
import { lit } from './support/fidelity-matrix.js';

const URL_ = process.env.MONGODB_URL;
const SKIP = 'MONGODB_URL is not set: no MongoDB server here (README, MongoDB: how to start a one-member replica set)';
if (!URL_) console.warn(`test/mongo-pg-server.test.ts: skipped: ${SKIP}`);

const withDb = (url: string, db: string) => url.replace(/^(mongodb(?:\+srv)?:\/\/[^/]+)\/?[^?]*/, `$1/${db}`);

describe.skipIf(!URL_)(`PostgreSQL → MongoDB on a real server${URL_ ? '' : ` (skipped: ${SKIP})`}`, () => {
  const snapDb = `ferry_pgm_snap_${process.pid}`;
  const cdcDb = `ferry_pgm_cdc_${process.pid}`;
  let cluster: Cluster;
  let client: MongoClient;
  let table: TableSchema;
  let copyText: Buffer;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('pgms');
    const url = cluster.urlFor('pgms');
    const c = new pg.Client({ connectionString: url, types: rawTypes });
    await c.connect();
    await c.query(`CREATE TABLE public.items (id int PRIMARY KEY, a int NOT NULL, b text, d numeric, ts timestamptz, f boolean, j jsonb);
      CREATE INDEX items_a_desc ON public.items (a DESC, b);
      CREATE UNIQUE INDEX items_b ON public.items (b);
      ALTER TABLE public.items ADD CONSTRAINT items_ad UNIQUE (a, d);
      CREATE UNIQUE INDEX items_ts ON public.items (ts);
      CREATE INDEX items_part ON public.items (a) WHERE f;
      CREATE INDEX items_lower ON public.items (lower(b));
      INSERT INTO public.items SELECT g, g % 7, CASE WHEN g % 3 = 0 THEN NULL ELSE 'b' || g END,
        CASE WHEN g % 2 = 0 THEN NULL ELSE g / 3.0 END, CASE WHEN g % 5 = 0 THEN NULL ELSE timestamptz '2024-01-01 00:00:00.000001+00' + g * interval '1 microsecond' END,
        g % 2 = 0, ${lit(DOLLAR_JSONB[0]!)}::jsonb FROM generate_series(1, 60) g;
      UPDATE public.items SET j = v.j::jsonb FROM (VALUES ${DOLLAR_JSONB.map((j, i) => `(${i + 1}, ${lit(j)})`).join(', ')}) v(id, j) WHERE items.id = v.id;`);
    await c.end();
    const source = new PgSnapshotSource({ url }, { connections: 1 });
    try {
      table = (await source.describe({ include: ['public.items'], exclude: [], rename: {} }))[0]!;
      const chunks: Buffer[] = [];
      for await (const ch of (await source.read(table, { kind: 'pk', lower: null, upper: null }, ['pg-copy-text'])).stream) chunks.push(ch as Buffer);
      copyText = Buffer.concat(chunks);
    } finally {
      await source.close();
    }
    client = new MongoClient(URL_!);
    await client.connect();
  }, 240_000);

  afterAll(async () => {
    for (const db of [snapDb, cdcDb]) await client?.db(db).dropDatabase().catch(() => {});
    await client?.close();
    await cluster?.stop();
  });

  it('copies, builds the translated indexes at finalize, and the change path stores the same bytes', async () => {
    const target = pgRowsToMongo(new MongoSnapshotTarget({ url: withDb(URL_!, snapDb) } as never));
    try {
      await target.preflight([table], { truncate: false, resuming: false });
      await target.createTables('pgm', [table]);
      const w = await target.openRange('pgm', 'r1', table);
      await w.write({ kind: 'pk', lower: null, upper: null }, { format: 'pg-copy-text', stream: Readable.from([copyText]) });
      await w.commit(null);
      const { warnings } = await target.finalize('pgm', [table], []);
      expect(warnings).toEqual(pgIndexesToMongo(table).warnings);
      expect(warnings.join('\n')).toMatch(/items_lower is not built on MongoDB: "lower\(b\)" is an expression/);
    } finally {
      await target.close();
    }
    const coll = client.db(snapDb).collection(table.target.name);
    const got = new Map((await coll.listIndexes().toArray()).map((ix) => [ix.name as string, ix]));
    for (const spec of pgIndexesToMongo(table).indexes) {
      const ix = got.get(spec.name);
      expect(ix, spec.name).toBeDefined();
      expect(Object.entries(ix!.key as Document).map(([k, v]) => [k, Number(v)])).toEqual(spec.key);
      expect(!!ix!.unique).toBe(!!spec.unique);
      if (spec.partialFilterExpression) expect(ix!.partialFilterExpression).toBeDefined();
    }

    // the change path: the same rows as inserts through the MongoDB change target
    const rows: RowImage[] = [];
    for await (const r of copyTextToRows(Readable.from([copyText]), copiedColumnsOf(table))) rows.push(r as RowImage);
    const ct = pgChangesToMongo(new MongoChangeTarget({ url: withDb(URL_!, cdcDb) } as never));
    try {
      const batch = await ct.begin('pgm', [table]);
      await batch.apply(rows.map((row) => ({ op: 'insert' as const, table: tableKey(table.source), row })));
      await batch.commit({ lsn: '0/1' } as never);
    } finally {
      await ct.close();
    }
    const raw = async (db: string) =>
      (await client.db(db).collection(table.target.name).find({}, { raw: true }).sort({ _id: 1 }).toArray()).map((b) =>
        Buffer.from(b as unknown as Uint8Array).toString('hex'),
      );
    const snapshotBytes = await raw(snapDb);
    expect(snapshotBytes).toHaveLength(60);
    expect(await raw(cdcDb)).toEqual(snapshotBytes);
    const first = BSON.deserialize(Buffer.from(snapshotBytes[0]!, 'hex'));
    expect(Object.keys(first.j as Document)).toEqual(['$oid']);
  }, 240_000);
});

describe.skipIf(!!URL_)('PostgreSQL → MongoDB on a real server (skipped)', () => {
  it.skip(SKIP, () => {});
});
