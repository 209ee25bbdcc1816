/**
 * Which rows a planned range means on the other engine's side, for cross-engine verify. A range is compared range by
 * range only where both engines order its keys the same way; otherwise the table is compared whole (still counts
 * and a digest, naming the table), which is always exact. Pure.
 *
 * - PostgreSQL → MongoDB: a key range `[lower, upper)` of key texts becomes an `_id` range of the codec's `_id`s
 *   (pgKeyTupleToId) when every key column is an integer, uuid or boolean: BSON orders Int32/Int64 by value, UUID
 *   binaries (same length and subtype) byte by byte like PostgreSQL's uuid, and false before true; a composite key's
 *   `_id` sub-document compares field by field, as PostgreSQL's row comparison does. Text keys follow a collation in
 *   PostgreSQL and bytes in MongoDB, timestamps lose their microseconds in `_id`, numerics may become text: whole.
 * - MongoDB → PostgreSQL: an `_id` range (bounds of one type bracket) becomes a predicate on the `_id` text column
 *   (canonical EJSON) for ObjectIds (hex in byte order, compared under the C collation), strings (UTF-8 bytes under
 *   "C", as BSON compares them), finite numbers (by value, as numeric) and dates (milliseconds): `mongoIdRangeForPg`.
 */
import type { Json, TableSchema } from '../model.js';
import { columnKind, pgKeyTupleToId } from './pg-to-mongo.js';

export type IdBracket = 'objectId' | 'string' | 'number' | 'date';

/** A MongoDB `_id` range as the PostgreSQL side reads it: bracket and bound values (text), either bound optional. */
export interface PgIdRange {
  bracket: IdBracket;
  lower: string | null;
  upper: string | null;
}

/** What a bound (plain JSON of an `_id`'s canonical EJSON) is, or undefined for a type not translated. */
function boundOf(b: Json): { bracket: IdBracket; value: string } | undefined {
  if (typeof b === 'string') return { bracket: 'string', value: b };
  if (!b || typeof b !== 'object' || Array.isArray(b)) return undefined;
  const o = b as Record<string, Json>;
  const keys = Object.keys(o);
  if (keys.length !== 1) return undefined;
  const k = keys[0]!;
  const v = o[k];
  if (k === '$oid' && typeof v === 'string') return { bracket: 'objectId', value: v.toLowerCase() };
  if ((k === '$numberInt' || k === '$numberLong' || k === '$numberDouble' || k === '$numberDecimal') && typeof v === 'string') {
    // NaN sorts below every number in BSON and above them in PostgreSQL: such bounds are compared whole.
    return /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) ? { bracket: 'number', value: v } : undefined;
  }
  if (k === '$date' && v && typeof v === 'object' && typeof (v as Record<string, Json>).$numberLong === 'string') {
    return { bracket: 'date', value: (v as Record<string, string>).$numberLong! };
  }
  return undefined;
}

/**
 * A MongoDB range (`{ kind: 'mongo-id', lower, upper, whole? }`) for the PostgreSQL side: 'all' for the whole
 * collection, undefined when its bounds are of a type this does not translate (then compare the table whole).
 */
export function mongoIdRangeForPg(range: Json | null): PgIdRange | 'all' | undefined {
  if (range === null) return 'all';
  const r = range as { kind?: string; lower?: Json; upper?: Json; whole?: boolean };
  if (!r || r.kind !== 'mongo-id') return undefined;
  if (r.whole || (r.lower === null && r.upper === null)) return 'all';
  const lo = r.lower === null || r.lower === undefined ? null : boundOf(r.lower);
  const hi = r.upper === null || r.upper === undefined ? null : boundOf(r.upper);
  if (lo === undefined || hi === undefined) return undefined;
  const bracket = (lo ?? hi)!.bracket;
  if (lo && hi && lo.bracket !== hi.bracket) return undefined;
  return { bracket, lower: lo?.value ?? null, upper: hi?.value ?? null };
}

/** Every planned range of a collection translates: compare it range by range (else whole). */
export function mongoRangesTranslate(ranges: readonly (Json | null)[]): boolean {
  return ranges.every((r) => mongoIdRangeForPg(r) !== undefined);
}

/** The table's key orders the same in PostgreSQL and as the codec's `_id` in MongoDB. */
export function pgKeyOrdersLikeId(table: Pick<TableSchema, 'columns' | 'primaryKey'>): boolean {
  if (table.primaryKey.length === 0) return false;
  const cols = new Map(table.columns.map((c) => [c.name, c]));
  return table.primaryKey.every((k) => {
    const c = cols.get(k);
    if (!c) return false;
    const kind = columnKind(c);
    return !kind.array && (kind.scalar === 'int32' || kind.scalar === 'int64' || kind.scalar === 'uuid' || kind.scalar === 'bool');
  });
}

/** A PostgreSQL key range (`{ kind: 'pk', lower, upper }`) as a MongoDB `_id` filter; null range: everything. */
export function pgRangeToIdFilter(table: Pick<TableSchema, 'columns' | 'primaryKey'>, range: Json | null): Record<string, unknown> {
  if (range === null) return {};
  const r = range as { kind?: string; lower?: Json; upper?: Json };
  if (r.kind !== 'pk') throw new Error(`not a PostgreSQL key range: ${JSON.stringify(range).slice(0, 200)}`);
  const cond: Record<string, unknown> = {};
  if (r.lower) cond.$gte = pgKeyTupleToId(table, r.lower);
  if (r.upper) cond.$lt = pgKeyTupleToId(table, r.upper);
  return Object.keys(cond).length ? { _id: cond } : {};
}
