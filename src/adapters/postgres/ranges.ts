/**
 * The PostgreSQL meaning of the opaque range, cursor and chunk bounds the core passes around, and the SQL predicate
 * for each. Source and target build the same predicate from the same JSON, so "the rows of this chunk" means the
 * same rows on both sides.
 *
 * - Tables with a primary key: `[lower, upper)` in key order, keys as PostgreSQL text (exact for every type; compared
 *   as untyped literals so the server resolves them to the column's own type). null means unbounded, so the first
 *   and last ranges also catch rows inserted outside the planned span.
 * - Tables without one: physical block ranges `[from, to)` over ctid (TID range scans, PostgreSQL 14+).
 */
import { FerryError } from '../../core/errors.js';
import type { Json, TableSchema } from '../../core/model.js';
import { ident, literal, qualified } from './sql.js';

export type KeyTuple = string[];

export type PgRange =
  | { kind: 'pk'; lower: KeyTuple | null; upper: KeyTuple | null }
  | { kind: 'blocks'; from: number; to: number | null };

export function asPgRange(value: Json): PgRange {
  const r = value as PgRange | null;
  if (r && typeof r === 'object' && (r.kind === 'pk' || r.kind === 'blocks')) return r;
  throw new FerryError(`not a PostgreSQL range: ${JSON.stringify(value)}`);
}

/** A cursor is where the next chunk starts: a key tuple (inclusive) or a block number. */
export function withCursor(range: PgRange, cursor: Json): PgRange {
  if (cursor === null) return range;
  if (range.kind === 'pk') return { ...range, lower: cursor as KeyTuple };
  return { ...range, from: cursor as number };
}

function tuple(columns: readonly string[]): string {
  const cols = columns.map(ident);
  return cols.length === 1 ? cols[0]! : `(${cols.join(', ')})`;
}

function values(key: KeyTuple): string {
  const lits = key.map(literal);
  return lits.length === 1 ? lits[0]! : `(${lits.join(', ')})`;
}

/** SQL boolean expression selecting the rows of `range` (no parameters: COPY (SELECT …) cannot take any). */
export function rangePredicate(table: TableSchema, range: PgRange): string {
  const parts: string[] = [];
  if (range.kind === 'pk') {
    const key = tuple(table.primaryKey);
    if (range.lower) parts.push(`${key} >= ${values(range.lower)}`);
    if (range.upper) parts.push(`${key} < ${values(range.upper)}`);
  } else {
    if (range.from > 0) parts.push(`ctid >= '(${range.from},0)'::tid`);
    if (range.to !== null) parts.push(`ctid < '(${range.to},0)'::tid`);
  }
  return parts.length ? parts.join(' AND ') : 'true';
}

export function rangeLabel(table: TableSchema, range: PgRange): string {
  if (range.kind === 'blocks') return `blocks [${range.from}, ${range.to ?? '∞'})`;
  const show = (k: KeyTuple | null, inf: string) => (k === null ? inf : k.length === 1 ? k[0]! : `(${k.join(', ')})`);
  const key = table.primaryKey.length === 1 ? table.primaryKey[0]! : `(${table.primaryKey.join(', ')})`;
  return `${key} in [${show(range.lower, '-∞')}, ${show(range.upper, '∞')})`;
}

/**
 * The relation to read a table's own rows from: `ONLY` keeps an inheritance parent from also reading its children
 * (they are tables of their own); a partitioned table is read whole, as its partitions are not selected separately.
 */
export function readFrom(table: TableSchema): string {
  const extra = table.extra as { partitioning?: unknown } | null;
  return extra && typeof extra === 'object' && extra.partitioning ? qualified(table.source) : `ONLY ${qualified(table.source)}`;
}

/**
 * The same on the target: deleting, truncating or checksumming an INHERITS parent must not touch its children's
 * rows (the children are tables of the flow of their own).
 */
export function targetRelation(table: TableSchema): string {
  const extra = table.extra as { partitioning?: unknown } | null;
  return extra && typeof extra === 'object' && extra.partitioning ? qualified(table.target) : `ONLY ${qualified(table.target)}`;
}

export function orderBy(table: TableSchema): string {
  return table.primaryKey.map(ident).join(', ');
}
