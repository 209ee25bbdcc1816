/**
 * MongoDB documents to PostgreSQL rows (`pg-text`).
 *
 * By default a collection becomes a table `(_id text PRIMARY KEY, doc jsonb NOT NULL)`: `_id` is the canonical
 * Extended JSON of the document's `_id`, `doc` the canonical Extended JSON of the whole document. Canonical EJSON
 * names every type (`{"$numberLong":"1"}`, `{"$date":...}`, `{"$binary":...}`), so no type is lost and the document
 * can be rebuilt with `EJSON.parse`. What jsonb does not keep: the order of fields (jsonb orders keys itself).
 *
 * With a declared mapping, chosen fields become typed columns instead (`flattenDocument`), and `doc` may be kept for
 * the rest.
 */
import { Binary, Decimal128, Double, Int32, Long, type Document } from 'bson';
import type { ColumnSchema, Json, TableSchema } from '../model.js';
import type { RowImage } from '../ports/change-source.js';
import { toCanonical } from './ejson.js';

export const DOC_COLUMN = 'doc';

/** The default row of a document. */
export function documentToPgRow(doc: Document): RowImage {
  return { _id: toCanonical(doc._id), [DOC_COLUMN]: toCanonical(doc) };
}

/** The key image of a document key (`documentKey` of a change event): `_id` only. */
export function idToPgKey(id: unknown): RowImage {
  return { _id: toCanonical(id) };
}

/**
 * The PostgreSQL table for a collection. `extra` is the PostgreSQL target's facts with nothing to build after the
 * load (no secondary indexes, constraints or sequences): the shape src/adapters/postgres/extra.ts reads.
 */
export function pgTableForCollection(t: TableSchema, mapping?: FlattenMapping): TableSchema {
  const columns: ColumnSchema[] = mapping
    ? [{ name: '_id', type: 'text', nullable: false }, ...mapping.columns.map((c) => ({ name: c.column, type: c.type, nullable: true })), ...(mapping.keepDocument ? [{ name: DOC_COLUMN, type: 'jsonb', nullable: false }] : [])]
    : [
        { name: '_id', type: 'text', nullable: false },
        { name: DOC_COLUMN, type: 'jsonb', nullable: false },
      ];
  const extra: Json = {
    version: 1,
    primaryKeyName: null,
    indexes: [],
    constraints: [],
    sequences: [],
    replicaIdentity: { mode: 'default', index: null },
    collations: [],
    virtualColumns: [],
    partitioning: null,
  };
  return { ...t, columns, primaryKey: ['_id'], extra };
}

export interface FlattenMapping {
  columns: { column: string; path: string; type: string }[];
  /** Also keep the whole document in `doc`. */
  keepDocument?: boolean;
}

function at(doc: Document, path: string): unknown {
  let v: unknown = doc;
  for (const p of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Document)[p];
  }
  return v;
}

function pad(n: number, w: number): string {
  return String(Math.abs(n)).padStart(w, '0');
}

/** A BSON value as the text of PostgreSQL type `type`, or null. Falls back to canonical EJSON for text and jsonb. */
export function bsonToPgText(v: unknown, type: string): string | null {
  if (v === undefined || v === null) return null;
  const t = type.toLowerCase();
  if (t === 'jsonb' || t === 'json') return toCanonical(v);
  if (v instanceof Int32 || v instanceof Double || v instanceof Long || v instanceof Decimal128) {
    const s = v.toString();
    if (v instanceof Double) {
      const d = v.valueOf();
      return Number.isNaN(d) ? 'NaN' : d === Infinity ? 'Infinity' : d === -Infinity ? '-Infinity' : Object.is(d, -0) ? '-0' : String(d);
    }
    return s;
  }
  if (typeof v === 'boolean') return t.startsWith('bool') ? (v ? 't' : 'f') : String(v);
  if (v instanceof Date) {
    const y = v.getUTCFullYear();
    const body = `${pad(y > 0 ? y : 1 - y, 4)}-${pad(v.getUTCMonth() + 1, 2)}-${pad(v.getUTCDate(), 2)} ${pad(v.getUTCHours(), 2)}:${pad(v.getUTCMinutes(), 2)}:${pad(v.getUTCSeconds(), 2)}.${pad(v.getUTCMilliseconds(), 3)}+00`;
    return y > 0 ? body : `${body} BC`;
  }
  if (v instanceof Binary) {
    if (t === 'uuid' && v.sub_type === Binary.SUBTYPE_UUID) return v.toUUID().toHexString(true);
    if (t === 'bytea') return `\\x${Buffer.from(v.buffer).toString('hex')}`;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && 'toHexString' in v && t !== 'jsonb') return (v as { toHexString(): string }).toHexString();
  return toCanonical(v);
}

/** A document to the columns of a declared mapping (`_id` always, as canonical EJSON). */
export function flattenDocument(doc: Document, mapping: FlattenMapping): RowImage {
  const row: RowImage = { _id: toCanonical(doc._id) };
  for (const c of mapping.columns) row[c.column] = bsonToPgText(at(doc, c.path), c.type);
  if (mapping.keepDocument) row[DOC_COLUMN] = toCanonical(doc);
  return row;
}
