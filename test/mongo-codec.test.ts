/**
 * Codecs between PostgreSQL and MongoDB, against the real `bson` library and (for the PostgreSQL side) a real
 * PostgreSQL server's text output of the fidelity matrix: every value is read by Ferry's own PostgreSQL source
 * (COPY text), mapped to BSON, serialized to BSON bytes and read back, then mapped back to PostgreSQL text and compared
 * by PostgreSQL itself (`IS NOT DISTINCT FROM` on the column's type).
 */
import { Readable } from 'node:stream';
import {
  BSON, BSONRegExp, BSONSymbol, Binary, Code, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID,
  type Document,
} from 'bson';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { EXACT_BSON, bsonRoundTrip, documentToImage, fromCanonical, imageToDocument, toCanonical } from '../src/core/codec/ejson.js';
import { bsonToPgText, documentToPgRow, flattenDocument, pgTableForCollection } from '../src/core/codec/mongo-to-pg.js';
import { MICROS_SUFFIX, columnKind, pgRowToDocument } from '../src/core/codec/pg-to-mongo.js';
import { jsonNumberToBson, jsonToBson, parseCopyTextLine, parsePgArray } from '../src/core/codec/pg-text.js';
import { copyTextToDocuments } from '../src/core/codec/row-streams.js';
import type { TableSchema } from '../src/core/model.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { BUILTIN_CASES, CUSTOM_CASES, MATRIX_ROWS as MATRIX_NULL_ROW, MATRIX_TYPES, createMatrix, insertMatrix } from './support/fidelity-matrix.js';

/** One value of every BSON type (deprecated ones included: a source may hold them). */
const EVERY_TYPE: Document = {
  double: new Double(1),
  doubleFrac: new Double(0.1),
  doubleNaN: new Double(NaN),
  doubleInf: new Double(Infinity),
  doubleNegInf: new Double(-Infinity),
  doubleNegZero: new Double(-0),
  doubleMin: new Double(5e-324),
  string: 'é 🦀 \u0000 nul inside',
  document: { b: 1, a: { nested: [new Int32(1)] } },
  array: [new Int32(1), 'two', null, [new Double(3)]],
  binary: new Binary(Buffer.from([0, 1, 2, 255]), 0),
  binaryFunction: new Binary(Buffer.from('f'), 1),
  binaryOld: new Binary(Buffer.from([1, 2, 3, 4]), 2),
  uuid: new UUID('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11').toBinary(),
  md5: new Binary(Buffer.alloc(16, 7), 5),
  encrypted: new Binary(Buffer.from([9]), 6),
  userDefined: new Binary(Buffer.from([1]), 0x80),
  objectId: new ObjectId('65f0a1b2c3d4e5f601234567'),
  true: true,
  false: false,
  date: new Date('2024-03-10T07:30:00.123Z'),
  dateBeforeEpoch: new Date(-62135596800000),
  null: null,
  regex: new BSONRegExp('^a.*b$', 'imsux'),
  dbPointerLike: new DBRef('things', new ObjectId('65f0a1b2c3d4e5f601234568'), 'db'),
  code: new Code('function () { return 1; }'),
  codeWithScope: new Code('function () { return x; }', { x: new Int32(1) }),
  symbol: new BSONSymbol('sym'),
  int32: new Int32(-2147483648),
  timestamp: new Timestamp({ t: 1_700_000_000, i: 7 }),
  int64: Long.fromString('-9223372036854775808'),
  int64Small: Long.fromInt(1),
  decimal128: Decimal128.fromString('1234567890123456789012345678901234'),
  decimalNaN: Decimal128.fromString('NaN'),
  decimalNegZero: Decimal128.fromString('-0.000'),
  decimalTiny: Decimal128.fromString('1E-6176'),
  minKey: new MinKey(),
  maxKey: new MaxKey(),
};

describe('canonical Extended JSON: every BSON type round-trips byte for byte', () => {
  const bytes = BSON.serialize(EVERY_TYPE);
  const exact = BSON.deserialize(bytes, EXACT_BSON);

  it('document → canonical EJSON → document → BSON gives the same bytes', () => {
    const back = fromCanonical(toCanonical(exact)) as Document;
    expect(Buffer.from(BSON.serialize(back)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('field by field through a RowImage (the mongo-ejson value encoding)', () => {
    const image = documentToImage(exact);
    expect(Object.keys(image)).toEqual(Object.keys(EVERY_TYPE));
    for (const v of Object.values(image)) expect(typeof v).toBe('string');
    expect(image.int32).toBe('{"$numberInt":"-2147483648"}');
    expect(image.double).toBe('{"$numberDouble":"1.0"}');
    expect(image.int64Small).toBe('{"$numberLong":"1"}');
    expect(Buffer.from(BSON.serialize(imageToDocument(image))).equals(Buffer.from(bytes))).toBe(true);
  });

  it('the driver defaults would lose types; EXACT_BSON keeps them', () => {
    const promoted = BSON.deserialize(bytes);
    expect(toCanonical(promoted.double)).toBe('{"$numberInt":"1"}'); // a Double 1.0 printed as an Int32: the reason for EXACT_BSON
    expect(toCanonical(exact.double)).toBe('{"$numberDouble":"1.0"}');
    expect(bsonRoundTrip(exact).int64Small).toBeInstanceOf(Long);
  });
});

describe('PostgreSQL text helpers', () => {
  it('COPY text lines: NULL, escapes, bytes', () => {
    expect(parseCopyTextLine('1\t\\N\ta\\tb\\nc\\\\d\t\\\\N')).toEqual(['1', null, 'a\tb\nc\\d', '\\N']);
    expect(parseCopyTextLine('\\303\\251\t\\x41')).toEqual(['é', 'A']);
  });

  it('array literals: quoting, NULL, nesting, bounds', () => {
    expect(parsePgArray('{"a,b","c\\"d",NULL,"NULL",""}').elements).toEqual(['a,b', 'c"d', null, 'NULL', '']);
    expect(parsePgArray('{{1,2},{3,4}}').elements).toEqual([['1', '2'], ['3', '4']]);
    expect(parsePgArray('[0:2]={7,8,9}')).toEqual({ elements: ['7', '8', '9'], lowerBounds: [0] });
    expect(parsePgArray('{}').elements).toEqual([]);
  });

  it('JSON numbers become the BSON number that holds them exactly', () => {
    expect(jsonNumberToBson('1')).toBeInstanceOf(Int32);
    expect(jsonNumberToBson('9007199254740993')).toBeInstanceOf(Long);
    expect(jsonNumberToBson('0.1')).toBeInstanceOf(Double);
    expect(jsonNumberToBson('0.10000000000000000000001')).toBeInstanceOf(Decimal128);
    expect(String(jsonNumberToBson('1e1000'))).toBe('1E+1000');
    expect(toCanonical(jsonToBson('{"b":1,"a":[1,2,{"c":null}],"a":3}'))).toBe('{"b":{"$numberInt":"1"},"a":{"$numberInt":"3"}}');
  });
});

describe('MongoDB → PostgreSQL', () => {
  const doc = BSON.deserialize(BSON.serialize(EVERY_TYPE), EXACT_BSON);

  it('default: _id and the whole document as canonical EJSON (no type lost)', () => {
    const row = documentToPgRow({ _id: new ObjectId('65f0a1b2c3d4e5f601234567'), ...doc });
    expect(row._id).toBe('{"$oid":"65f0a1b2c3d4e5f601234567"}');
    const back = fromCanonical(row.doc!) as Document;
    expect(Buffer.from(BSON.serialize(back)).equals(Buffer.from(BSON.serialize({ _id: new ObjectId('65f0a1b2c3d4e5f601234567'), ...doc })))).toBe(true);
    const table = pgTableForCollection({ source: { schema: 'app', name: 'users' }, target: { schema: 'app', name: 'users' }, columns: [], primaryKey: ['_id'], estimatedRows: 0, estimatedBytes: 0, extra: null });
    expect(table.columns.map((c) => `${c.name} ${c.type}`)).toEqual(['_id text', 'doc jsonb']);
  });

  it('declared mapping: typed columns from paths', () => {
    const row = flattenDocument(
      { _id: new Int32(7), n: Long.fromString('9223372036854775807'), d: { at: new Date('2024-01-02T03:04:05.678Z') }, b: true, bin: new Binary(Buffer.from([1, 2]), 0) },
      { columns: [{ column: 'n', path: 'n', type: 'bigint' }, { column: 'at', path: 'd.at', type: 'timestamptz' }, { column: 'b', path: 'b', type: 'boolean' }, { column: 'bin', path: 'bin', type: 'bytea' }, { column: 'gone', path: 'x.y', type: 'text' }] },
    );
    expect(row).toEqual({ _id: '{"$numberInt":"7"}', n: '9223372036854775807', at: '2024-01-02 03:04:05.678+00', b: 't', bin: '\\x0102', gone: null });
  });
});

describe('PostgreSQL → MongoDB over the fidelity matrix (real PostgreSQL text)', () => {
  let cluster: Cluster;
  let url: string;
  let client: pg.Client;
  let tables: TableSchema[];
  const docs = new Map<string, Document[]>();

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('codec');
    url = cluster.urlFor('codec');
    client = new pg.Client({ connectionString: url, types: rawTypes, options: '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex' });
    await client.connect();
    await client.query(MATRIX_TYPES);
    await client.query(createMatrix('fid.builtin', BUILTIN_CASES));
    await client.query(insertMatrix('fid.builtin', BUILTIN_CASES));
    await client.query(createMatrix('fid.custom', CUSTOM_CASES));
    await client.query(insertMatrix('fid.custom', CUSTOM_CASES));
    await client.query(`CREATE TABLE fid.composite (a int, b text, v text, PRIMARY KEY (a, b)); INSERT INTO fid.composite VALUES (1, 'x', 'one'), (2, 'y\tz', NULL)`);
    const source = new PgSnapshotSource({ url }, { connections: 2 });
    try {
      tables = await source.describe({ include: ['fid.*'], exclude: [], rename: {} });
      for (const t of tables) {
        const rows = await source.read(t, { kind: 'pk', lower: null, upper: null }, ['pg-copy-text']);
        expect(rows.format).toBe('pg-copy-text');
        const out: Document[] = [];
        for await (const d of copyTextToDocuments(rows.stream, t)) out.push(BSON.deserialize(BSON.serialize(d as Document), EXACT_BSON));
        docs.set(t.source.name, out);
      }
    } finally {
      await source.close();
    }
  });

  afterAll(async () => {
    await client?.end();
    await cluster?.stop();
  });

  const byId = (name: string, id: number) => docs.get(name)!.find((d) => (d._id as Int32).value === id)!;

  it('the key becomes _id; composite keys a sub-document in key order', () => {
    expect(docs.get('builtin')!.length).toBeGreaterThan(5);
    const d = byId('builtin', 1);
    expect(d._id).toBeInstanceOf(Int32);
    expect('id' in d).toBe(false);
    const comp = docs.get('composite')!;
    expect(toCanonical(comp[1]!._id)).toBe('{"a":{"$numberInt":"2"},"b":"y\\tz"}');
    expect(comp[1]!.v).toBeNull();
  });

  it('each type maps to the BSON type of the mapping table', () => {
    const d1 = byId('builtin', 1);
    expect(d1.i8).toBeInstanceOf(Long);
    expect((d1.i8 as Long).toString()).toBe('-9223372036854775808');
    expect(d1.i4).toBeInstanceOf(Int32);
    expect(d1.i2).toBeInstanceOf(Int32);
    expect(d1.f8).toBeInstanceOf(Double);
    expect(d1.f4).toBeInstanceOf(Double);
    expect(d1.n38).toBe('12345678901234567890123456789012345678'); // 38 digits: more than Decimal128 holds, kept as text
    expect(d1.n38s).toBe('1234567890123456789012345678.0123456789');
    expect(byId('builtin', 3).n38).toBeInstanceOf(Decimal128);
    expect(byId('builtin', 4).n38!.toString()).toBe('NaN');
    expect(byId('builtin', 7).n38!.toString()).toBe('0.000'); // PostgreSQL prints numeric -0.000 as 0.000: its numeric has no negative zero
    expect(d1.bo).toBe(true);
    expect(d1.ba).toBeInstanceOf(Binary);
    expect((d1.u as Binary).sub_type).toBe(Binary.SUBTYPE_UUID);
    expect((byId('builtin', 3).u as Binary).toUUID().toHexString(true)).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(d1.tstz).toBeInstanceOf(Date);
    expect(byId('builtin', 2).tstz).toBe('infinity');
    expect(byId('builtin', 5).tstz).toBeInstanceOf(Date);
    expect((byId('builtin', 5)[`tstz${MICROS_SUFFIX}`] as Int32).value).toBe(321); // .654321: Date has .654, the micros field 321
    expect(byId('builtin', 8).ts).toBe('294276-12-31 23:59:59.999999'); // beyond JavaScript Date's range
    expect(byId('builtin', 7).ts).toBeInstanceOf(Date); // 4713 BC fits
    expect(d1.d).toBeInstanceOf(Date);
    expect(byId('builtin', 6).d).toBe('5874897-12-31');
    expect(typeof d1.j).toBe('string'); // json keeps its exact text
    expect(d1.j).toBe('{"b":1,  "a":2,"a":3}');
    expect(toCanonical(d1.jb)).toBe('{"a":[{"$numberInt":"1"},{"$numberInt":"2"},{"c":null}],"b":{"$numberInt":"1"}}');
    expect(toCanonical(byId('builtin', 2).ia)).toBe('[{"$numberInt":"1"},null,{"$numberInt":"3"}]');
    expect(toCanonical(byId('builtin', 3).ia)).toBe('[[{"$numberInt":"1"},{"$numberInt":"2"}],[{"$numberInt":"3"},{"$numberInt":"4"}]]');
    expect(byId('builtin', 4).ia).toBe('[0:2]={7,8,9}'); // explicit lower bound: the text
    expect((d1.ta as unknown[]).slice(0, 5)).toEqual(['a,b', 'c"d', '{braces}', null, 'NULL']);
    expect(typeof d1.iv).toBe('string');
    expect(typeof d1.ip).toBe('string');
    expect(byId('custom', 1).mood).toBe('sad');
    expect(byId('custom', 1).pos).toBeInstanceOf(Decimal128); // a domain over numeric(38,10) maps as its base
    expect(byId('builtin', MATRIX_NULL_ROW).i8).toBeNull();
  });

  it('back to PostgreSQL text, PostgreSQL finds every scalar value equal to the original', async () => {
    const kinds = new Map(tables.flatMap((t) => t.columns.map((c) => [`${t.source.name}.${c.name}`, columnKind(c)] as const)));
    let compared = 0;
    for (const t of tables.filter((x) => x.source.name !== 'composite')) {
      for (const d of docs.get(t.source.name)!) {
        for (const c of t.columns) {
          if (c.name === 'id' || Array.isArray(d[c.name])) continue;
          const kind = kinds.get(`${t.source.name}.${c.name}`)!;
          if (kind.array || kind.scalar === 'jsonb') continue;
          let v = d[c.name];
          let text = typeof v === 'string' ? v : bsonToPgText(v, c.type.startsWith('uuid') ? 'uuid' : c.type.startsWith('bytea') ? 'bytea' : c.type);
          const micros = d[`${c.name}${MICROS_SUFFIX}`] as Int32 | undefined;
          if (v instanceof Date && kind.scalar === 'date') text = text!.replace(/ 00:00:00\.000\+00/, '');
          if (v instanceof Date && micros) text = text!.replace(/(\.\d{3})/, `$1${String(micros.value).padStart(3, '0')}`);
          if (v instanceof Date && kind.scalar === 'timestamp') text = text!.replace(/\+00/, '');
          v = undefined;
          const { rows } = await client.query<{ same: boolean }>(
            `SELECT ($1::${c.type} IS NOT DISTINCT FROM (SELECT ${c.name} FROM ${t.source.schema}.${t.source.name} WHERE id = $2)) AS same`,
            [text, (d._id as Int32).value],
          ).catch(async () => client.query<{ same: boolean }>(
            // json has no equality operator: compare its text
            `SELECT ($1::text IS NOT DISTINCT FROM (SELECT ${c.name}::text FROM ${t.source.schema}.${t.source.name} WHERE id = $2)) AS same`,
            [text, (d._id as Int32).value],
          ));
          if (!rows[0]!.same) throw new Error(`${t.source.name}.${c.name} (${c.type}) id ${(d._id as Int32).value}: ${text} differs`);
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(200);
  });

  it('streams: COPY text in arbitrary byte chunks gives the same documents', async () => {
    const t = tables.find((x) => x.source.name === 'composite')!;
    const text = Buffer.from('1\tx\tone\n2\ty\\tz\t\\N\n');
    const parts = [text.subarray(0, 3), text.subarray(3, 11), text.subarray(11)];
    const out: Document[] = [];
    for await (const d of copyTextToDocuments(Readable.from(parts), t)) out.push(d as Document);
    expect(out.map((d) => toCanonical(d))).toEqual(docs.get('composite')!.map((d) => toCanonical(d)));
  });
});


