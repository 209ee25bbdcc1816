/**
 * The MongoDB driver adapters against a real MongoDB replica set or sharded cluster named by MONGODB_URL
 * (e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0; NOTES.md says how to start one). No MongoDB server can run on the
 * machines this project is developed on, so without MONGODB_URL these tests are skipped, saying so.
 *
 * What they pin: describe/plan/chunk/read over `_id` ranges with every document in exactly one chunk; a range written
 * twice leaves one copy; a second delivery waits for the first's lease; the change stream's token is taken before
 * any read and a resumed stream replays converging writes; checksums equal on both sides; PostgreSQL-shaped rows
 * through the bridge. (When the ports contract suites land on main, register these adapters there too.)
 */
import { Readable } from 'node:stream';
import { Binary, Decimal128, Double, Int32, Long, MongoClient, ObjectId, type Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoChangeSource } from '../src/adapters/mongodb/change-source.js';
import { MongoChangeTarget } from '../src/adapters/mongodb/change-target.js';
import { DriverStreamServer } from '../src/adapters/mongodb/server.js';
import { MongoSnapshotSource } from '../src/adapters/mongodb/snapshot-source.js';
import { MongoSnapshotTarget } from '../src/adapters/mongodb/snapshot-target.js';
import { pgRowsToMongo } from '../src/core/codec/bridge.js';
import { EXACT_BSON, MONGO_DOCS, toCanonical } from '../src/core/codec/ejson.js';
import type { TableSchema } from '../src/core/model.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';

const URL_ = process.env.MONGODB_URL;
const SKIP = 'MONGODB_URL is not set: no MongoDB server here (README, MongoDB: how to start a one-member replica set)';

// The default reporter shows only a count of skipped tests: say why.
if (!URL_) console.warn(`test/mongo-adapters.test.ts: skipped: ${SKIP}`);

const withDb = (url: string, db: string) => url.replace(/^(mongodb(?:\+srv)?:\/\/[^/]+)\/?[^?]*/, `$1/${db}`);

describe.skipIf(!URL_)(`MongoDB adapters on a real server${URL_ ? '' : ` (skipped: ${SKIP})`}`, () => {
  const srcDb = `ferry_src_${process.pid}`;
  const dstDb = `ferry_dst_${process.pid}`;
  let client: MongoClient;
  let source: MongoSnapshotSource;
  let target: MongoSnapshotTarget;
  let table: TableSchema;

  beforeAll(async () => {
    client = new MongoClient(URL_!);
    await client.connect();
    const docs: Document[] = Array.from({ length: 2500 }, (_, i) => ({
      _id: new Int32(i),
      d: new Double(i / 3),
      l: Long.fromNumber(i * 1_000_000_007),
      n: Decimal128.fromString(`${i}.10`),
      b: new Binary(Buffer.from([i & 255]), 0),
      at: new Date(1_700_000_000_000 + i),
      tag: i % 7 === 0 ? null : `t${i}`,
    }));
    await client.db(srcDb).collection('items').insertMany(docs);
    await client.db(srcDb).collection('items').createIndex({ tag: 1 }, { name: 'by_tag' });
    await client.db(srcDb).collection('mixed').insertMany([{ _id: new Int32(1) }, { _id: 'one' }, { _id: new ObjectId() }] as never[]);
    source = new MongoSnapshotSource({ url: withDb(URL_!, srcDb) });
    target = new MongoSnapshotTarget({ url: withDb(URL_!, dstDb) });
    table = (await source.describe({ include: [`${srcDb}.items`], exclude: [], rename: {} }))[0]!;
  });

  afterAll(async () => {
    await client?.db(srcDb).dropDatabase().catch(() => {});
    await client?.db(dstDb).dropDatabase().catch(() => {});
    await Promise.allSettled([source?.close(), target?.close(), client?.close()]);
  });

  it('describes collections with their indexes; plans _id ranges; a mixed-type _id collection is one range', async () => {
    expect(table.primaryKey).toEqual(['_id']);
    expect(table.estimatedRows).toBe(2500);
    expect(JSON.stringify(table.extra)).toContain('by_tag');
    const ranges = await source.planRanges(table, 1000);
    expect(ranges.length).toBeGreaterThanOrEqual(2);
    expect((ranges[0]!.range as { lower: unknown }).lower).toBeNull();
    expect((ranges.at(-1)!.range as { upper: unknown }).upper).toBeNull();
    expect(await source.planRanges(table, 10_000)).toHaveLength(1); // small-collection guard
    const [mixed] = await source.describe({ include: [`${srcDb}.mixed`], exclude: [], rename: {} });
    // Several _id types: one range per comparison bracket present, plus the rest; every document in exactly one.
    const plan = await source.planRanges(mixed!, 1);
    expect(plan.map((p) => (p.range as { types?: string[] }).types?.[0] ?? 'rest')).toEqual(['double', 'string', 'objectId', 'rest']);
    const seen: string[] = [];
    for (const p of plan) {
      let cursor = null;
      for (;;) {
        const chunk = await source.nextChunk(mixed!, p.range, cursor, 1);
        for await (const d of (await source.read(mixed!, chunk.bounds, [MONGO_DOCS])).stream) seen.push(toCanonical((d as Document)._id));
        if (chunk.next === null) break;
        cursor = chunk.next;
      }
    }
    expect(seen.length).toBe(3);
    expect(new Set(seen).size).toBe(3);
  });

  it('copies every document exactly once, types kept, even when a range is written twice; checksums agree', async () => {
    await target.preflight([table], { truncate: false, resuming: false });
    await target.createTables('f', [table]);
    for (const [i, r] of (await source.planRanges(table, 1000)).entries()) {
      let cursor = null;
      for (;;) {
        const w = await target.openRange('f', `job-${i}`, table);
        if (w.done) {
          await w.release();
          break;
        }
        const chunk = await source.nextChunk(table, r.range, w.cursor ?? cursor, 300);
        await w.write(chunk.bounds, await source.read(table, chunk.bounds, target.accepts));
        // A replay of the same chunk (a duplicate delivery after a crash before commit) leaves one copy.
        await w.write(chunk.bounds, await source.read(table, chunk.bounds, target.accepts));
        await w.commit(chunk.next);
        cursor = chunk.next;
        if (chunk.next === null) break;
      }
    }
    const copied = await client.db(dstDb).collection('items').find({}, EXACT_BSON).sort({ _id: 1 }).toArray();
    const original = await client.db(srcDb).collection('items').find({}, EXACT_BSON).sort({ _id: 1 }).toArray();
    expect(copied.length).toBe(2500);
    expect(copied.map((d) => toCanonical(d))).toEqual(original.map((d) => toCanonical(d)));
    expect(await target.checksum(table, null)).toEqual(await source.checksum(table, null));
    await target.finalize('f', [table], []);
    expect((await client.db(dstDb).collection('items').indexes()).map((ix) => ix.name)).toContain('by_tag');
  });

  it('a second delivery of a job waits for the first, then sees its cursor', async () => {
    const first = await target.openRange('f', 'lease-job', table);
    const second = target.openRange('f', 'lease-job', table);
    const bounds = { kind: 'mongo-id', lower: { $numberInt: '0' }, upper: { $numberInt: '10' } };
    await first.write(bounds, await source.read(table, bounds, target.accepts));
    await first.commit({ $numberInt: '10' });
    const w2 = await second;
    expect(w2.cursor).toEqual({ $numberInt: '10' });
    await w2.release();
  });

  it('a source collection\'s default collation comes along to the target collection', async () => {
    await client.db(srcDb).createCollection('collated', { collation: { locale: 'en', strength: 2 } });
    await client.db(srcDb).collection('collated').insertMany([{ _id: 'a' }, { _id: 'B' }] as never[]);
    const [t] = await source.describe({ include: [`${srcDb}.collated`], exclude: [], rename: {} });
    await target.createTables('f', [t!]);
    const [info] = await client.db(dstDb).listCollections({ name: 'collated' }).toArray();
    expect((info as { options?: { collation?: { locale?: string; strength?: number } } }).options?.collation).toMatchObject({ locale: 'en', strength: 2 });
    // A target collection that orders strings otherwise is refused (resuming or truncating alike).
    await client.db(dstDb).collection('collated').drop();
    await client.db(dstDb).createCollection('collated');
    await expect(target.preflight([t!], { truncate: true, resuming: false })).rejects.toThrow(/exists with collation "simple", the source's is/);
  });

  it('a delivery whose lease another took over stops before it deletes or writes anything', async () => {
    const stale = await target.openRange('f', 'fenced-job', table);
    // As if this delivery stalled past its lease and another one took the job (and maybe committed the chunk).
    await client.db(dstDb).collection('_ferry').updateOne({ _id: 'snapshot/f/fenced-job' } as never, { $set: { lockedBy: 'another-delivery' } });
    await client.db(dstDb).collection('items').insertOne({ _id: new Int32(100_000), kept: true } as never);
    const bounds = { kind: 'mongo-id', lower: { $numberInt: '100000' }, upper: { $numberInt: '100001' } };
    await expect(stale.write(bounds, await source.read(table, bounds, target.accepts))).rejects.toThrow(/taken over by another delivery/);
    expect(await client.db(dstDb).collection('items').findOne({ _id: new Int32(100_000) } as never)).toMatchObject({ kept: true });
    await client.db(dstDb).collection('items').deleteOne({ _id: new Int32(100_000) } as never);
  });

  it('change stream: token before the reads, converging replay into a MongoDB target, positions checkpointed', async () => {
    const server = new DriverStreamServer(source.client, { where: 'test' });
    const changes = new MongoChangeSource(server);
    await changes.preflight('f', [table]);
    const start = await changes.prepare('f', [table], { resuming: false });
    const coll = client.db(srcDb).collection('items');
    await coll.insertOne({ _id: new Int32(9000), v: 'new' } as never);
    await coll.updateOne({ _id: new Int32(1) }, { $set: { tag: 'changed' } });
    await coll.deleteOne({ _id: new Int32(2) });
    const got: StreamEvent[] = [];
    const ac = new AbortController();
    await changes.stream('f', [table], start.position, async (events) => {
      got.push(...events);
      if (got.filter((e) => e.kind === 'commit').length >= 3) ac.abort();
    }, ac.signal);
    expect(got.filter((e) => e.kind === 'change').map((e) => (e as { change: { op: string } }).change.op)).toEqual(['insert', 'update', 'delete']);
    const applier = new MongoChangeTarget({ url: withDb(URL_!, dstDb) });
    try {
      const b = await applier.begin('f', [table]);
      await b.apply(got.flatMap((e) => (e.kind === 'change' ? [e.change] : [])));
      const last = got.filter((e) => e.kind === 'commit').at(-1) as { position: unknown };
      await b.commit(last.position as never);
      expect(await applier.appliedPosition('f')).toEqual(last.position);
      const dst = client.db(dstDb).collection('items');
      expect(await dst.findOne({ _id: new Int32(9000) })).toMatchObject({ v: 'new' });
      expect(await dst.findOne({ _id: new Int32(1) })).toMatchObject({ tag: 'changed' });
      expect(await dst.findOne({ _id: new Int32(2) })).toBeNull();
    } finally {
      await applier.close();
    }
  });

  it('PostgreSQL COPY text rows through the bridge become documents keyed by _id', async () => {
    const pgTable: TableSchema = {
      source: { schema: 'public', name: 'pgrows' },
      target: { schema: 'public', name: 'pgrows' },
      columns: [
        { name: 'id', type: 'bigint', nullable: false },
        { name: 'amount', type: 'numeric(12,2)', nullable: true },
        { name: 'u', type: 'uuid', nullable: true },
      ],
      primaryKey: ['id'],
      estimatedRows: 2,
      estimatedBytes: 10,
      extra: null,
    };
    const bridged = pgRowsToMongo(target);
    await bridged.preflight([pgTable], { truncate: false, resuming: false });
    await bridged.createTables('g', [pgTable]);
    const text = '1\t12.50\ta0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n2\t\\N\t\\N\n';
    for (let attempt = 0; attempt < 2; attempt++) {
      const w = await bridged.openRange('g', `pg-${attempt}`, pgTable);
      await w.write({ kind: 'pk', lower: null, upper: null }, { format: 'pg-copy-text', stream: Readable.from([Buffer.from(text)]) });
      await w.commit(null);
    }
    const docs = await client.db(dstDb).collection('pgrows').find({}, EXACT_BSON).sort({ _id: 1 }).toArray();
    expect(docs.map((d) => toCanonical(d))).toEqual([
      '{"_id":{"$numberLong":"1"},"amount":{"$numberDecimal":"12.50"},"u":{"$binary":{"base64":"oO68mZwLTvi7bWu5vTgKEQ==","subType":"04"}}}',
      '{"_id":{"$numberLong":"2"},"amount":null,"u":null}',
    ]);
  });

  it('reads in format mongo-bson-docs only', async () => {
    await expect(source.read(table, { kind: 'mongo-id', lower: null, upper: null }, ['pg-copy-text'])).rejects.toThrow(/MongoDB row formats/);
    expect(source.capabilities.formats).toEqual([MONGO_DOCS]);
  });
});

describe.skipIf(!!URL_)('MongoDB adapters (skipped)', () => {
  it.skip(SKIP, () => {});
});
