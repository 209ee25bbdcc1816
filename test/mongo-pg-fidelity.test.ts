/**
 * PostgreSQL → MongoDB: the snapshot mapping and the change mapping give the same document, byte for byte in BSON,
 * for every row of the fidelity matrix (builtin, custom types, the awkward keys) and for jsonb values whose keys look
 * like Extended JSON wrappers (`$oid`, `$date`, `$numberLong`, `$ref`/`$id`, `$undefined`, …), dotted keys, nesting
 * and `__proto__`. jsonb is user data: `{"$oid": "…"}` stays a sub-document with a `$oid` field on both paths.
 *
 * Snapshot path: real COPY text from embedded PostgreSQL through Ferry's PostgreSQL source and `copyTextToDocuments`.
 * Change path: the same rows' text (what pgoutput sends is the same type output) through the real bridge
 * `pgChangesToMongo` as insert, update and delete changes; what the bridge hands the MongoDB target (mongo-ejson
 * images) is decoded with `imageToDocument`, the function MongoChangeTarget applies. No MongoDB server is involved:
 * the captured port is the bridge's output, not a stand-in for the server.
 */
import { BSON, Code, DBRef, EJSON, Int32, ObjectId, type Document } from 'bson';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { pgChangesToMongo } from '../src/core/codec/bridge.js';
import { copiedColumnsOf } from '../src/core/codec/columns.js';
import { EXACT_BSON, documentToImage, imageToDocument } from '../src/core/codec/ejson.js';
import { imageTextToValue, valueToImageText } from '../src/core/codec/ejson-escape.js';
import { copyTextToDocuments, copyTextToRows } from '../src/core/codec/row-streams.js';
import { tableKey, type TableSchema } from '../src/core/model.js';
import type { Change, RowImage } from '../src/core/ports/change-source.js';
import type { ApplyBatch, ChangeTarget } from '../src/core/ports/change-target.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { DOLLAR_JSONB, OID } from './mongo-pg-values.js';
import { BUILTIN_CASES, CUSTOM_CASES, KEYED_TABLES, MATRIX_TYPES, createMatrix, insertMatrix, lit } from './support/fidelity-matrix.js';

/** Collects what the bridge hands to the MongoDB ChangeTarget: the mongo-ejson images it would apply. */
class CapturedImages implements ChangeTarget {
  readonly capabilities = { encodings: ['mongo-ejson'], keylessReplay: false, savepoints: false, concurrentBatches: true, truncate: true } as never;
  readonly applied: Change[] = [];
  readonly upserted: RowImage[] = [];
  async appliedPosition() {
    return undefined;
  }
  async begin(): Promise<ApplyBatch> {
    return {
      apply: async (changes) => (this.applied.push(...changes), []),
      upsert: async (_t, rows) => void this.upserted.push(...rows),
      commit: async () => {},
      rollback: async () => {},
    };
  }
  async close() {}
}

const bytes = (d: Document) => Buffer.from(BSON.serialize(d)).toString('hex');
/** What MongoChangeTarget does with an image: `imageToDocument`, then the driver serializes it. */
const applied = (image: RowImage) => imageToDocument(image);

describe('PostgreSQL → MongoDB: snapshot and change mapping agree byte for byte', () => {
  let cluster: Cluster;
  let tables: TableSchema[];
  const snap = new Map<string, Document[]>();
  const images = new Map<string, RowImage[]>();

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('pgmongo');
    const url = cluster.urlFor('pgmongo');
    const client = new pg.Client({ connectionString: url, types: rawTypes });
    await client.connect();
    try {
      await client.query(MATRIX_TYPES);
      await client.query(createMatrix('fid.builtin', BUILTIN_CASES));
      await client.query(insertMatrix('fid.builtin', BUILTIN_CASES));
      await client.query(createMatrix('fid.custom', CUSTOM_CASES));
      await client.query(insertMatrix('fid.custom', CUSTOM_CASES));
      for (const k of KEYED_TABLES) {
        await client.query(k.ddl);
        await client.query(k.fill);
      }
      await client.query(`CREATE TABLE fid.dollar (id int PRIMARY KEY, j jsonb, ja jsonb[], "a.b" text, "__proto__" int)`);
      await client.query(
        `INSERT INTO fid.dollar VALUES ${DOLLAR_JSONB.map((j, i) => `(${i + 1}, ${lit(j)}::jsonb, ARRAY[${lit(j)}::jsonb, '{"$oid": "x"}'::jsonb], 'dot', ${i})`).join(', ')}`,
      );
    } finally {
      await client.end();
    }
    const source = new PgSnapshotSource({ url }, { connections: 2 });
    try {
      tables = await source.describe({ include: ['fid.*', '"Sales Dept".*'], exclude: [], rename: {} });
      for (const t of tables) {
        const read = async () => (await source.read(t, { kind: 'pk', lower: null, upper: null }, ['pg-copy-text'])).stream;
        const docs: Document[] = [];
        for await (const d of copyTextToDocuments(await read(), t)) docs.push(d as Document);
        const rows: RowImage[] = [];
        for await (const r of copyTextToRows(await read(), copiedColumnsOf(t))) rows.push(r as RowImage);
        snap.set(tableKey(t.source), docs);
        images.set(tableKey(t.source), rows);
      }
    } finally {
      await source.close();
    }
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('covers the whole matrix, the keyed tables and the $-keyed jsonb values', () => {
    const names = tables.map((t) => tableKey(t.source));
    for (const k of KEYED_TABLES) expect(names.some((n) => k.table.replace(/"/g, '') === n.replace(/"/g, ''))).toBe(true);
    expect(snap.get('fid.dollar')!.length).toBe(DOLLAR_JSONB.length);
    expect(snap.get('fid.builtin')!.length).toBeGreaterThan(5);
    for (const t of tables) expect(images.get(tableKey(t.source))!.length, tableKey(t.source)).toBe(snap.get(tableKey(t.source))!.length);
  });

  it('insert, update and delete through pgChangesToMongo give the snapshot document (and its _id) byte for byte', async () => {
    let rows = 0;
    for (const t of tables) {
      const key = tableKey(t.source);
      const target = new CapturedImages();
      const batch = await pgChangesToMongo(target).begin('f', [t]);
      const imgs = images.get(key)!;
      const changes: Change[] = imgs.flatMap((row): Change[] => [
        { op: 'insert', table: key, row },
        { op: 'update', table: key, row, old: null },
        { op: 'delete', table: key, old: Object.fromEntries(t.primaryKey.map((k) => [k, row[k] ?? null])) },
      ]);
      expect(await batch.apply(changes)).toEqual([]);
      await batch.upsert(key, imgs);
      const docs = snap.get(key)!;
      docs.forEach((doc, i) => {
        const want = bytes(doc);
        const [ins, upd, del] = target.applied.slice(i * 3, i * 3 + 3) as [Change, Change, Change];
        if (ins.op !== 'insert' || upd.op !== 'update' || del.op !== 'delete') throw new Error(`${key}: unexpected ops`);
        expect(bytes(applied(ins.row)), `${key} row ${i} insert`).toBe(want);
        expect(bytes(applied(upd.row)), `${key} row ${i} update`).toBe(want);
        expect(bytes({ _id: applied({ _id: del.old._id! })._id }), `${key} row ${i} delete _id`).toBe(bytes({ _id: doc._id }));
        expect(bytes(applied(target.upserted[i]!)), `${key} row ${i} fetched upsert`).toBe(want);
        // Read back with the bson library (EXACT_BSON) it is the same document again, except that the reader turns a
        // sub-document with `$ref` and `$id` into a DBRef, whose serialization puts `$ref` first (a reader's
        // property, on both paths alike; verify's canonical form sorts keys).
        if (!JSON.stringify(imgs[i]).includes('$ref')) expect(bytes(BSON.deserialize(BSON.serialize(applied(ins.row)), EXACT_BSON))).toBe(want);
        rows++;
      });
    }
    expect(rows).toBeGreaterThan(150);
  });

  it('a jsonb {"$oid": …} stays a sub-document with a $oid field, on both paths', () => {
    const docs = snap.get('fid.dollar')!;
    const imgs = images.get('fid.dollar')!;
    docs.forEach((doc, i) => {
      const viaChange = imageToDocument(documentToImage(doc));
      // JSON-level equality with what PostgreSQL printed: no wrapper was interpreted (BSON numbers print as EJSON).
      const printed = (v: unknown) => EJSON.stringify(v as Document, { relaxed: true });
      expect(printed(doc.j), DOLLAR_JSONB[i]).toBe(JSON.stringify(JSON.parse(imgs[i]!.j!)));
      expect(printed(viaChange.j)).toBe(printed(doc.j));
      expect(Object.keys(doc)).toEqual(['_id', 'j', 'ja', 'a.b', '__proto__']);
      expect(Object.getPrototypeOf(doc)).toBe(Object.prototype);
    });
    const first = docs[0]!.j as Document;
    expect(first).not.toBeInstanceOf(ObjectId);
    expect(Object.keys(first)).toEqual(['$oid']);
    expect((imageToDocument(documentToImage(docs[0]!)).j as Document).$oid).toBe(OID);
    // The reason for the escape: plain canonical EJSON reads the same sub-document back as an ObjectId.
    expect(EJSON.parse(EJSON.stringify(first, { relaxed: false }), { relaxed: false })).toBeInstanceOf(ObjectId);
    expect(valueToImageText(first).startsWith('~')).toBe(true);
    expect(imageTextToValue(valueToImageText(first))).toEqual({ $oid: OID });
  });

  it('the escape also holds inside a Code scope, DBRef fields and arrays (MongoDB documents with nested $ fields)', () => {
    const vals: unknown[] = [
      new Code('f()', { $oid: OID, n: new Int32(1) }),
      new DBRef('c', new ObjectId(OID), 'db', { $weird: { $date: 'x' } } as Document),
      [{ $numberLong: '1' }, new Int32(3)],
      { a: { $undefined: true }, b: null },
    ];
    for (const v of vals) {
      const text = valueToImageText(v);
      expect(text.startsWith('~')).toBe(true);
      expect(bytes({ v: imageTextToValue(text) })).toBe(bytes({ v }));
    }
  });

  it('values without $-prefixed keys keep the plain canonical EJSON text (unchanged encoding)', () => {
    for (const doc of snap.get('fid.builtin')!) {
      for (const k of Object.keys(doc)) expect(valueToImageText(doc[k]).startsWith('~')).toBe(false);
    }
  });
});

