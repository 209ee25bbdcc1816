/**
 * PostgreSQL rows (their text form, `pg-text`) to MongoDB documents. Lossless where BSON has the type, and where it
 * has not, the PostgreSQL text itself (a string) rather than a rounded value:
 *
 * | PostgreSQL | BSON |
 * |---|---|
 * | smallint, integer | Int32 |
 * | bigint | Int64 (Long) |
 * | real, double precision | Double (NaN, ±Infinity, -0 kept) |
 * | numeric | Decimal128 when exact (≤ 34 digits; NaN, ±Infinity), else the text |
 * | boolean | Boolean |
 * | text, varchar, char, enums | String |
 * | bytea | Binary subtype 0 |
 * | uuid | Binary subtype 4 (UUID) |
 * | timestamptz, timestamp | Date (UTC ms) + `<col>__micros` Int32 when sub-ms digits are non-zero; ±infinity and years beyond Date's range: the text |
 * | date | Date at 00:00 UTC; ±infinity and out-of-range years: the text |
 * | jsonb | the JSON as BSON (objects → documents, numbers → Int32/Int64/Double/Decimal128, whichever is exact); user data, never Extended JSON: `{"$oid": …}` stays a sub-document with a `$oid` field, on the change path too (ejson-escape.ts) |
 * | json | String (json keeps its text byte for byte: key order, duplicates, spaces) |
 * | arrays | Arrays of the element mapping (nested for several dimensions); explicit lower bounds (`[0:2]=`) → the text |
 * | domains | as their base type (a domain over an array: an array) |
 * | anything else (interval, time, inet, ranges, geometry, xml, ...) | the text |
 *
 * The primary key becomes `_id` (the column itself is then left out); a composite key becomes a sub-document
 * `{ a, b }` in key order. What this cannot hold (no primary key, an array or json(b) key, a `$`-prefixed column, a
 * non-key `_id` column, a `<ts>__micros` collision) is refused at plan time: pg-to-mongo-checks.ts. Indexes:
 * pg-to-mongo-indexes.ts.
 */
import { Binary, Decimal128, Double, Int32, Long, type Document } from 'bson';
import type { ColumnSchema, Json, TableSchema } from '../model.js';
import type { RowImage } from '../ports/change-source.js';
import { jsonToBson, parsePgArray, type PgArray } from './pg-text.js';

export const MICROS_SUFFIX = '__micros';

type Scalar =
  | 'int32'
  | 'int64'
  | 'double'
  | 'numeric'
  | 'bool'
  | 'string'
  | 'bytea'
  | 'uuid'
  | 'timestamptz'
  | 'timestamp'
  | 'date'
  | 'jsonb'
  | 'json'
  | 'text-form';

const ALIASES: Record<string, Scalar> = {
  smallint: 'int32', int2: 'int32', integer: 'int32', int: 'int32', int4: 'int32',
  bigint: 'int64', int8: 'int64',
  real: 'double', float4: 'double', 'double precision': 'double', float8: 'double',
  numeric: 'numeric', decimal: 'numeric',
  boolean: 'bool', bool: 'bool',
  text: 'string', 'character varying': 'string', varchar: 'string', character: 'string', char: 'string', bpchar: 'string', name: 'string', citext: 'string',
  bytea: 'bytea', uuid: 'uuid',
  'timestamp with time zone': 'timestamptz', timestamptz: 'timestamptz',
  'timestamp without time zone': 'timestamp', timestamp: 'timestamp',
  date: 'date', jsonb: 'jsonb', json: 'json',
};

export interface ColumnKind {
  scalar: Scalar;
  array: boolean;
}

/** How a column maps, from its type text (format_type or SQL spelling) and, for domains and enums, its typeRef. */
export function columnKind(col: Pick<ColumnSchema, 'type' | 'typeRef'>): ColumnKind {
  let type = col.type.trim();
  const array = type.endsWith('[]');
  if (array) type = type.replace(/(\[\])+$/, '');
  const ref = col.typeRef as { def?: { kind?: string; baseType?: string; base?: Json } } | null | undefined;
  if (ref?.def?.kind === 'enum') return { scalar: 'string', array };
  if (ref?.def?.kind === 'domain' && ref.def.baseType) {
    // A domain over an array (`CREATE DOMAIN d AS int[]`) holds array text: its values are arrays too.
    const base = columnKind({ type: ref.def.baseType, typeRef: ref.def.base ?? null });
    return { scalar: base.scalar, array: array || base.array };
  }
  // `numeric(38,10)`, `character varying(10)`, `timestamp(3) with time zone`: the modifier does not change the mapping.
  const bare = type.replace(/\(\s*\d+(\s*,\s*\d+)?\s*\)/, '').replace(/\s+/g, ' ').replace(/^pg_catalog\./, '').toLowerCase();
  return { scalar: ALIASES[bare] ?? 'text-form', array };
}

/** `YYYY-MM-DD[ HH:MM:SS[.ffffff]][+HH[:MM[:SS]]][ BC]` (DateStyle ISO) to ms since the epoch and sub-ms micros. */
export function parsePgTimestamp(text: string): { ms: number; micros: number } | undefined {
  const m = /^(\d{4,})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?$/.exec(text);
  if (!m) return undefined;
  let year = Number(m[1]);
  if (m[12]) year = 1 - year; // 1 BC is astronomical year 0
  const d = new Date(0);
  d.setUTCFullYear(year, Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), 0);
  const frac = (m[7] ?? '').padEnd(6, '0');
  const micro = Number(frac);
  const offset = m[8] ? (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0)) : 0;
  const base = d.getTime();
  if (Number.isNaN(base)) return undefined;
  const ms = base + Math.floor(micro / 1000) - offset * 1000;
  if (Math.abs(ms) > 8.64e15) return undefined; // beyond what a BSON date read back into JavaScript can hold
  return { ms, micros: micro % 1000 };
}

function scalarToBson(s: Scalar, text: string): unknown {
  switch (s) {
    case 'int32':
      return new Int32(Number(text));
    case 'int64':
      return Long.fromString(text);
    case 'double':
      return new Double(Number(text));
    case 'numeric':
      try {
        return Decimal128.fromString(text);
      } catch {
        return text; // more than 34 significant digits: Decimal128 would round it
      }
    case 'bool':
      return text === 't' || text === 'true';
    case 'bytea':
      return new Binary(Buffer.from(text.slice(2), 'hex'), Binary.SUBTYPE_DEFAULT);
    case 'uuid':
      return new Binary(Buffer.from(text.replace(/-/g, ''), 'hex'), Binary.SUBTYPE_UUID);
    case 'jsonb':
      return jsonToBson(text);
    case 'timestamptz':
    case 'timestamp':
    case 'date': {
      const t = parsePgTimestamp(text);
      return t ? new Date(t.ms) : text;
    }
    default:
      return text;
  }
}

function arrayToBson(s: Scalar, a: PgArray): unknown[] {
  return a.map((e) => {
    if (e === null) return null;
    if (Array.isArray(e)) return arrayToBson(s, e);
    // An array element cannot carry a micros sibling: one that is not exact to the millisecond stays text.
    if ((s === 'timestamptz' || s === 'timestamp') && parsePgTimestamp(e)?.micros) return e;
    return scalarToBson(s, e);
  });
}

/** One column's value. Returns the fields it becomes (the value, and for timestamps maybe `<col>__micros`). */
export function pgValueToBson(col: Pick<ColumnSchema, 'name' | 'type' | 'typeRef'>, text: string | null): Document {
  if (text === null) return { [col.name]: null };
  const kind = columnKind(col);
  if (kind.array) {
    // box[] is the one built-in array type whose elements are separated by `;`.
    const { elements, lowerBounds } = parsePgArray(text, col.type.startsWith('box') ? ';' : ',');
    if (lowerBounds && lowerBounds.some((b) => b !== 1)) return { [col.name]: text };
    return { [col.name]: arrayToBson(kind.scalar, elements) };
  }
  if (kind.scalar === 'timestamptz' || kind.scalar === 'timestamp') {
    const t = parsePgTimestamp(text);
    if (!t) return { [col.name]: text };
    return t.micros ? { [col.name]: new Date(t.ms), [`${col.name}${MICROS_SUFFIX}`]: new Int32(t.micros) } : { [col.name]: new Date(t.ms) };
  }
  return { [col.name]: scalarToBson(kind.scalar, text) };
}

/** A field by definition, not assignment: a column named `__proto__` stays a field instead of setting the prototype. */
function setField(doc: Document, k: string, v: unknown): void {
  Object.defineProperty(doc, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** The `_id` of a row: its key column's value, or a sub-document of the key columns in key order. */
export function pgKeyToId(table: Pick<TableSchema, 'columns' | 'primaryKey'>, row: RowImage): unknown {
  const cols = new Map(table.columns.map((c) => [c.name, c]));
  const valueOf = (k: string) => {
    const col = cols.get(k) ?? { name: k, type: 'text' };
    return pgValueToBson(col, row[k] ?? null)[k];
  };
  if (table.primaryKey.length === 1) return valueOf(table.primaryKey[0]!);
  const id: Document = {};
  for (const k of table.primaryKey) setField(id, k, valueOf(k));
  return id;
}

/**
 * A row to a document: `_id` first, then the other columns in table order. Columns absent from the image (an
 * unchanged TOAST value) are absent from the document: an update then leaves them as they are.
 */
export function pgRowToDocument(table: Pick<TableSchema, 'columns' | 'primaryKey'>, row: RowImage): Document {
  const doc: Document = {};
  const key = new Set(table.primaryKey);
  if (table.primaryKey.length > 0) doc._id = pgKeyToId(table, row);
  for (const col of table.columns) {
    if (key.has(col.name) || col.generated || !(col.name in row)) continue;
    const fields = pgValueToBson(col, row[col.name]!);
    for (const k of Object.keys(fields)) setField(doc, k, fields[k]);
  }
  // A column the table schema does not know (added on the source while streaming): its text, rather than nothing.
  const known = new Set(table.columns.map((c) => c.name));
  for (const [k, v] of Object.entries(row)) if (!known.has(k) && !key.has(k)) setField(doc, k, v);
  return doc;
}

/** The documents' `_id` filter bounds of a PostgreSQL key range bound (key texts in key order). */
export function pgKeyTupleToId(table: Pick<TableSchema, 'columns' | 'primaryKey'>, tuple: Json): unknown {
  const texts = tuple as string[];
  const row: RowImage = {};
  table.primaryKey.forEach((k, i) => (row[k] = texts[i] ?? null));
  return pgKeyToId(table, row);
}
