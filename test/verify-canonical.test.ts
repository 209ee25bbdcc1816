/**
 * Cross-engine verify's canonical forms (src/core/codec/canonical.ts), with the real `bson` library and real
 * PostgreSQL (embedded). No MongoDB server here: the MongoDB sides are the same pure functions the MongoDB checksum
 * adapters call on documents read with EXACT_BSON, applied to documents serialized to BSON bytes and read back.
 *
 * - PostgreSQL → MongoDB: every type of the fidelity matrix, read by Ferry's PostgreSQL side (PgDocFormChecksums,
 *   the snapshot's own read and codec), digests equal to the documents' read back from BSON; a one-bit change, a
 *   missing field, Int32 vs Int64 vs Double each change the form.
 * - MongoDB → PostgreSQL: documents loaded into PostgreSQL through the flow's bridge (default `(_id, doc)` and a
 *   declared mapping), per `_id` range (ObjectId, int, string, date `_id`s): PgRowFormChecksums equals the digest
 *   of the codec's rows of the documents in that range; a changed value, a deleted or an extra row differ in exactly
 *   the range that holds them.
 */
import { Readable } from 'node:stream';
import { BSON, Binary, Decimal128, Double, Int32, Long, ObjectId, type Document } from 'bson';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rangesFromSample, type MongoRange } from '../src/adapters/mongodb/ranges.js';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { PgDocFormChecksums, PgRowFormChecksums } from '../src/adapters/postgres/checksum-canonical.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { mongoRowsToPg } from '../src/core/codec/bridge.js';
import { CanonicalDigest, documentForm, documentRowForm, normalizePgValue, pgRowDocForm, sortedCanonical } from '../src/core/codec/canonical.js';
import { mongoIdRangeForPg, pgKeyOrdersLikeId, pgRangeToIdFilter } from '../src/core/codec/canonical-ranges.js';
import { EXACT_BSON, MONGO_DOCS } from '../src/core/codec/ejson.js';
import { pgTableForCollection, type FlattenMapping } from '../src/core/codec/mongo-to-pg.js';
import { copyTextToDocuments } from '../src/core/codec/row-streams.js';
import type { Json, TableSchema } from '../src/core/model.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { BUILTIN_CASES, CUSTOM_CASES, MATRIX_TYPES, createMatrix, insertMatrix } from './support/fidelity-matrix.js';

const viaBson = (d: Document): Document => BSON.deserialize(BSON.serialize(d), EXACT_BSON);

describe('the PostgreSQL → MongoDB form tells values apart', () => {
  const base = { _id: new Int32(1), v: new Int32(1), b: new Binary(Buffer.from([0b1010_0000, 1]), 0), s: 'x' };

  it('Int32, Int64 and Double holding 1 differ; a bit, a missing field and null differ; key order does not', () => {
    const forms = new Set([
      documentForm(base),
      documentForm({ ...base, v: Long.fromInt(1) }),
      documentForm({ ...base, v: new Double(1) }),
      documentForm({ ...base, v: Decimal128.fromString('1') }),
      documentForm({ ...base, b: new Binary(Buffer.from([0b1010_0001, 1]), 0) }),
      documentForm({ _id: base._id, v: base.v, b: base.b }),
      documentForm({ ...base, s: null }),
      documentForm({ ...base, b: new Binary(Buffer.from([0b1010_0000, 1]), 4) }),
    ]);
    expect(forms.size).toBe(8);
    expect(documentForm({ s: 'x', b: base.b, v: base.v, _id: base._id })).toBe(documentForm(base));
    expect(documentForm(viaBson(base))).toBe(documentForm(base));
    expect(sortedCanonical({ z: { b: 1, a: [new Int32(2), { d: 1, c: 2 }] } })).toBe('{"z":{"a":[{"$numberInt":"2"},{"c":{"$numberInt":"2"},"d":{"$numberInt":"1"}}],"b":{"$numberInt":"1"}}}');
  });

  it('the digest is order-free and counts duplicates', () => {
    const a = new CanonicalDigest();
    const b = new CanonicalDigest();
    for (const f of ['1', '2', '3']) a.add(f);
    for (const f of ['3', '1', '2']) b.add(f);
    expect(a.result()).toEqual(b.result());
    b.add('3');
    expect(b.rows).toBe(4);
    expect(b.hash).not.toBe(a.hash);
  });

  it('ranges: only keys that order alike in both engines are compared by range', () => {
    const t = (type: string, key = ['id']): TableSchema => ({ source: { schema: 's', name: 't' }, target: { schema: 's', name: 't' }, columns: [{ name: 'id', type, nullable: false }, { name: 'k', type: 'uuid', nullable: false }], primaryKey: key, estimatedRows: 0, estimatedBytes: 0, extra: null });
    expect(pgKeyOrdersLikeId(t('bigint'))).toBe(true);
    expect(pgKeyOrdersLikeId(t('integer', ['id', 'k']))).toBe(true);
    expect(pgKeyOrdersLikeId(t('text'))).toBe(false);
    expect(pgKeyOrdersLikeId(t('timestamp with time zone'))).toBe(false);
    expect(pgKeyOrdersLikeId(t('numeric'))).toBe(false);
    const f = pgRangeToIdFilter(t('integer', ['id', 'k']), { kind: 'pk', lower: ['5', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'], upper: null });
    expect(JSON.stringify(BSON.EJSON.serialize(f, { relaxed: false }))).toBe('{"_id":{"$gte":{"id":{"$numberInt":"5"},"k":{"$binary":{"base64":"oO68mZwLTvi7bWu5vTgKEQ==","subType":"04"}}}}}');
    expect(mongoIdRangeForPg({ kind: 'mongo-id', lower: { $oid: 'AB' }, upper: null } as Json)).toEqual({ bracket: 'objectId', lower: 'ab', upper: null });
    expect(mongoIdRangeForPg({ kind: 'mongo-id', lower: { $numberDouble: 'NaN' }, upper: null } as Json)).toBeUndefined();
    expect(mongoIdRangeForPg({ kind: 'mongo-id', lower: { $binary: { base64: '', subType: '00' } }, upper: null } as Json)).toBeUndefined();
    expect(mongoIdRangeForPg({ kind: 'mongo-id', lower: null, upper: null, whole: true } as Json)).toBe('all');
  });

  it('PostgreSQL values normalize by type, and only equal values meet', () => {
    expect(normalizePgValue('numeric(10,3)', '1.500')).toBe(normalizePgValue('numeric', '1.5'));
    expect(normalizePgValue('numeric', '1.5E+1')).toBe(normalizePgValue('numeric', '15'));
    expect(normalizePgValue('numeric', '1.51')).not.toBe(normalizePgValue('numeric', '1.5'));
    expect(normalizePgValue('timestamp with time zone', '2024-01-02 03:04:05.678+00')).toBe(normalizePgValue('timestamptz', '2024-01-02 03:04:05.678+00'));
    expect(normalizePgValue('timestamptz', '2024-01-02 03:04:05.678+00')).toBe(normalizePgValue('timestamptz', '2024-01-02 04:04:05.678+01'));
    expect(normalizePgValue('timestamptz', '2024-01-02 03:04:05.678001+00')).not.toBe(normalizePgValue('timestamptz', '2024-01-02 03:04:05.678+00'));
    expect(normalizePgValue('jsonb', '{"b": 1, "a": {"$numberInt": "2"}}')).toBe(normalizePgValue('jsonb', '{"a":{"$numberInt":"2"},"b":1}'));
    expect(normalizePgValue('bigint', '007')).toBe('7');
    expect(normalizePgValue('double precision', '-0')).toBe('-0');
    expect(normalizePgValue('boolean', 'true')).toBe('t');
  });
});

describe('cross-engine digests against real PostgreSQL', () => {
  let cluster: Cluster;
  let srcUrl: string;
  let dstUrl: string;
  let dst: pg.Client;

  beforeAll(async () => {
    cluster = await startCluster();
    await Promise.all([cluster.createDatabase('vsrc'), cluster.createDatabase('vdst')]);
    srcUrl = cluster.urlFor('vsrc');
    dstUrl = cluster.urlFor('vdst');
    const src = new pg.Client({ connectionString: srcUrl, types: rawTypes });
    await src.connect();
    await src.query(MATRIX_TYPES);
    await src.query(createMatrix('fid.builtin', BUILTIN_CASES));
    await src.query(insertMatrix('fid.builtin', BUILTIN_CASES));
    await src.query(createMatrix('fid.custom', CUSTOM_CASES));
    await src.query(insertMatrix('fid.custom', CUSTOM_CASES));
    await src.query(`CREATE TABLE fid.composite (a int, b text, v jsonb, PRIMARY KEY (a, b)); INSERT INTO fid.composite VALUES (1, 'x', '{"z": 1, "a": [1.5, "s"]}'), (2, 'y\tz', NULL)`);
    await src.end();
    dst = new pg.Client({ connectionString: dstUrl, types: rawTypes });
    await dst.connect();
  }, 120_000);

  afterAll(async () => {
    await dst?.end();
    await cluster?.stop();
  });

  it('PostgreSQL → MongoDB: each row of the fidelity matrix and its document read back from BSON give one digest', async () => {
    const source = new PgSnapshotSource({ url: srcUrl }, { connections: 2 });
    try {
      const tables = await source.describe({ include: ['fid.*'], exclude: [], rename: {} });
      expect(tables.length).toBe(3);
      const side = new PgDocFormChecksums(source);
      for (const t of tables) {
        const rows = await source.read(t, { kind: 'pk', lower: null, upper: null }, ['pg-copy-text']);
        const stored = new CanonicalDigest();
        const docs: Document[] = [];
        for await (const d of copyTextToDocuments(rows.stream, t)) docs.push(viaBson(d as Document));
        for (const d of docs) stored.add(documentForm(d));
        const pgSide = await side.checksum(t, null);
        expect(pgSide).toEqual(stored.result());
        expect(pgSide.rows).toBeGreaterThan(1);
        // One changed value in one document changes the digest; so does a missing document.
        const changed = new CanonicalDigest();
        docs.forEach((d, i) => changed.add(documentForm(i === 0 ? { ...d, extra: 1 } : d)));
        expect(changed.hash).not.toBe(pgSide.hash);
        const fewer = new CanonicalDigest();
        docs.slice(1).forEach((d) => fewer.add(documentForm(d)));
        expect(fewer.result()).not.toEqual(pgSide);
      }
      // Per range: the planned ranges of an integer key, read by the PostgreSQL side, sum to the whole.
      const builtin = tables.find((t) => t.source.name === 'builtin')!;
      expect(pgKeyOrdersLikeId(builtin)).toBe(true);
      const ranges = await source.planRanges(builtin, 3);
      expect(ranges.length).toBeGreaterThan(1);
      let n = 0;
      for (const r of ranges) n += (await side.checksum(builtin, r.range)).rows;
      expect(n).toBe((await side.checksum(builtin, null)).rows);
      // Every column of the matrix went through the codec: int8, numeric, bytea, uuid, timestamptz (+ micros), jsonb, arrays...
      const row = { id: '1', i8: '9223372036854775807' };
      expect(pgRowDocForm({ columns: [{ name: 'id', type: 'integer', nullable: false }, { name: 'i8', type: 'int8', nullable: true }], primaryKey: ['id'] }, row)).toBe(
        '{"_id":{"$numberInt":"1"},"i8":{"$numberLong":"9223372036854775807"}}',
      );
    } finally {
      await source.close();
    }
  }, 120_000);

  /** Collections of one `_id` type each, their ids sorted as MongoDB sorts that type. */
  const oid = (i: number) => new ObjectId(`65f0a1b2c3d4e5f6${(0x1000 + i * 37).toString(16).padStart(8, '0')}`);
  const collections: { name: string; ids: unknown[]; mapping?: FlattenMapping }[] = [
    { name: 'oids', ids: Array.from({ length: 40 }, (_, i) => oid(i)) },
    { name: 'ints', ids: Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? Long.fromInt(i * 10 - 150) : i % 3 === 1 ? new Int32(i * 10 - 150) : new Double(i * 10 - 150.5))) },
    { name: 'strs', ids: ['a', 'B', 'é', 'z', 'Z', 'ab', 'a b', '0', '~', '日本', 'Ω', 'aa', 'b', 'c', 'C', 'd'] },
    { name: 'dates', ids: Array.from({ length: 20 }, (_, i) => new Date(Date.UTC(1960 + i * 5, i % 12, 1))) },
    {
      name: 'flat',
      ids: Array.from({ length: 12 }, (_, i) => new Int32(i)),
      mapping: {
        columns: [
          { column: 'n', path: 'n', type: 'bigint' },
          { column: 'price', path: 'price', type: 'numeric(10,3)' },
          { column: 'at', path: 'when.at', type: 'timestamptz' },
          { column: 'ok', path: 'ok', type: 'boolean' },
          { column: 'tags', path: 'tags', type: 'jsonb' },
        ],
        keepDocument: true,
      },
    },
  ];
  const docOf = (id: unknown, i: number): Document => ({
    _id: id,
    n: Long.fromInt(i * 1000),
    price: Decimal128.fromString(`${i}.5`),
    when: { at: new Date(Date.UTC(2024, 0, 1, 0, 0, i, 123)) },
    ok: i % 2 === 0,
    tags: ['a', new Int32(i), { z: 1, a: null }],
    bin: new Binary(Buffer.from([i, 255]), 0),
  });
  /** BSON order within one type bracket (what MongoDB's $gte/$lt use). */
  const cmp = (a: unknown, b: unknown): number => {
    if (a instanceof ObjectId) return Buffer.compare(Buffer.from(a.id), Buffer.from((b as ObjectId).id));
    if (typeof a === 'string') return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b as string, 'utf8'));
    if (a instanceof Date) return a.getTime() - (b as Date).getTime();
    return Number((a as Int32).valueOf()) - Number((b as Int32).valueOf());
  };

  it('MongoDB → PostgreSQL: per _id range, the PostgreSQL side equals the documents\' rows; a change shows in its range only', async () => {
    const target = new PgSnapshotTarget({ url: dstUrl }, { connections: 2 });
    const mappings: Record<string, FlattenMapping> = Object.fromEntries(collections.filter((c) => c.mapping).map((c) => [`app.${c.name}`, c.mapping!]));
    const bridged = mongoRowsToPg(target, mappings);
    const rowsSide = new PgRowFormChecksums({ url: dstUrl }, mappings, { connections: 2 });
    try {
      const tables: TableSchema[] = collections.map((c) => ({
        source: { schema: 'app', name: c.name },
        target: { schema: 'app', name: c.name },
        columns: [{ name: '_id', type: 'mongodb:_id', nullable: false }],
        primaryKey: ['_id'],
        estimatedRows: c.ids.length,
        estimatedBytes: 0,
        extra: null,
      }));
      await bridged.preflight(tables, { truncate: false, resuming: false });
      await bridged.createTables('xv', tables);
      for (const [k, c] of collections.entries()) {
        const t = tables[k]!;
        const docs = c.ids.map((id, i) => viaBson(docOf(id, i)));
        const w = await bridged.openRange('xv', `load-${c.name}`, t);
        await w.write({ kind: 'mongo-id', lower: null, upper: null }, { format: MONGO_DOCS, stream: Readable.from(docs) });
        await w.commit(null);
        const sorted = [...c.ids].sort(cmp);
        const ranges = rangesFromSample(sorted, 4);
        expect(ranges.length).toBe(4);
        const pgTable = pgTableForCollection(t, c.mapping);
        const inRange = (r: MongoRange, d: Document) => {
          const lo = r.lower === null ? undefined : sorted.find((id) => JSON.stringify(BSON.EJSON.serialize({ v: id }, { relaxed: false }).v) === JSON.stringify(r.lower));
          const hi = r.upper === null ? undefined : sorted.find((id) => JSON.stringify(BSON.EJSON.serialize({ v: id }, { relaxed: false }).v) === JSON.stringify(r.upper));
          return (lo === undefined || cmp(d._id, lo) >= 0) && (hi === undefined || cmp(d._id, hi) < 0);
        };
        const expected = (r: MongoRange, ds: Document[]) => {
          const dg = new CanonicalDigest();
          for (const d of ds) if (inRange(r, d)) dg.add(documentRowForm(pgTable, d, c.mapping));
          return dg.result();
        };
        let total = 0;
        for (const r of ranges) {
          const got = await rowsSide.checksum(t, r as Json);
          expect(got, `${c.name} ${JSON.stringify(r)}`).toEqual(expected(r, docs));
          expect(got.rows).toBeGreaterThan(0);
          total += got.rows;
        }
        expect(total).toBe(docs.length);

        // Tamper with one row in the third range: only that range differs.
        const victim = docs.find((d) => inRange(ranges[2]!, d))!;
        const idText = BSON.EJSON.stringify(victim._id, { relaxed: false });
        if (c.mapping) await dst.query(`UPDATE app.${c.name} SET price = price + 0.001 WHERE _id = $1`, [idText]);
        else await dst.query(`UPDATE app.${c.name} SET doc = jsonb_set(doc, '{n}', '{"$numberInt":"0"}') WHERE _id = $1`, [idText]);
        const after = await Promise.all(ranges.map((r) => rowsSide.checksum(t, r as Json)));
        expect(after.map((a, i) => a.hash === expected(ranges[i]!, docs).hash)).toEqual([true, true, false, true]);
        expect(after[2]!.rows).toBe(expected(ranges[2]!, docs).rows);
        // A deleted row and an extra one: counts differ in their ranges.
        await dst.query(`DELETE FROM app.${c.name} WHERE _id = $1`, [idText]);
        expect((await rowsSide.checksum(t, ranges[2] as Json)).rows).toBe(expected(ranges[2]!, docs).rows - 1);
        // Repair's first step deletes exactly the range (the bridge then reloads it).
        await rowsSide.clearRange(t, ranges[1] as Json);
        expect((await rowsSide.checksum(t, ranges[1] as Json)).rows).toBe(0);
        expect((await rowsSide.checksum(t, ranges[0] as Json)).rows).toBe(expected(ranges[0]!, docs).rows);
      }
      // An Int64 stored where the source had an Int32 (same number): the digest differs.
      const t = tables[1]!;
      const before = await rowsSide.checksum(t, null);
      await dst.query(`UPDATE app.ints SET doc = jsonb_set(doc, '{n}', '{"$numberInt":"0"}') WHERE doc->'n' = '{"$numberLong":"0"}'`);
      expect((await rowsSide.checksum(t, null)).hash).not.toBe(before.hash);
    } finally {
      await Promise.allSettled([rowsSide.close(), target.close()]);
    }
  }, 180_000);
});
