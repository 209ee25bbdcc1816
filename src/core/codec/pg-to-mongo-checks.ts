/**
 * What a PostgreSQL table must be for the PostgreSQL → MongoDB mapping (pg-to-mongo.ts) to hold it, checked when the
 * flow is planned (the bridged target's preflight, which `ferry plan` and `ferry run` call before anything is
 * written) instead of failing at the first write, or worse, writing something else:
 * - a primary key: the documents' `_id`, so that a repeated or resumed range leaves one copy;
 * - a key column whose values would be an array (`int[]`, a domain over an array) or may be one or hold `$`-prefixed
 *   fields (jsonb, json): MongoDB refuses an array `_id`, and `$`-prefixed field names inside `_id`;
 * - a key column of a timestamp type with sub-millisecond precision (`timestamptz`, `timestamp(6)`): in `_id` it is a
 *   Date of milliseconds, so the microseconds would be lost and keys within one millisecond would collide;
 * - column names the document cannot carry: `$`-prefixed (a top-level `$` field is refused in the replacements that
 *   apply changes and re-copied ranges; inside a composite `_id` refused always), a non-key column named `_id`, or a
 *   column named `<timestamp column>__micros` (the sub-millisecond sibling of that column: one would overwrite the other).
 * Every problem of every table is reported at once, each naming the table and column and what to do.
 */
import { PreflightError } from '../errors.js';
import { tableKey, type ColumnSchema, type TableSchema } from '../model.js';
import { columnKind, MICROS_SUFFIX } from './pg-to-mongo.js';

/** Can the column hold digits below the millisecond? (`timestamp(0..3)` cannot; no precision means 6.) */
function subMillisecond(col: Pick<ColumnSchema, 'type' | 'typeRef'>): boolean {
  const base = (col.typeRef as { def?: { kind?: string; baseType?: string } } | null | undefined)?.def;
  const text = base?.kind === 'domain' && base.baseType ? base.baseType : col.type;
  const p = /^timestamp\s*\((\d)\)/i.exec(text.trim());
  return !p || Number(p[1]) > 3;
}

/** The problems of one table (empty when the mapping holds it). */
export function pgToMongoProblems(table: Pick<TableSchema, 'source' | 'columns' | 'primaryKey'>): string[] {
  const name = tableKey(table.source);
  if (table.primaryKey.length === 0) {
    return [`${name} has no primary key: a MongoDB target needs one for the documents' _id, so that a repeated or resumed range leaves one copy`];
  }
  const out: string[] = [];
  const cols = new Map(table.columns.map((c) => [c.name, c]));
  const key = new Set(table.primaryKey);
  for (const k of table.primaryKey) {
    const col = cols.get(k);
    if (!col) continue;
    const kind = columnKind(col);
    if (kind.array) {
      out.push(`${name}: primary key column "${k}" is of type ${col.type}, an array: MongoDB refuses an array _id`);
    } else if (kind.scalar === 'jsonb' || kind.scalar === 'json') {
      out.push(`${name}: primary key column "${k}" is of type ${col.type}: its values may be arrays or hold $-prefixed keys, which a MongoDB _id cannot`);
    } else if ((kind.scalar === 'timestamptz' || kind.scalar === 'timestamp') && subMillisecond(col)) {
      // In _id a timestamp is a BSON Date (milliseconds) and the key column is not repeated in the document: the
      // microseconds would be lost, and two keys in one millisecond would become one document.
      out.push(`${name}: primary key column "${k}" is of type ${col.type}, which holds microseconds: a MongoDB _id Date holds milliseconds, so keys within one millisecond would become one document`);
    }
  }
  const timestamps = new Set(table.columns.filter((c) => !key.has(c.name) && ['timestamptz', 'timestamp'].includes(columnKind(c).scalar)).map((c) => c.name));
  for (const c of table.columns) {
    if (c.generated) continue;
    if (c.name.startsWith('$')) {
      out.push(`${name}: column "${c.name}" starts with $: MongoDB refuses a $-prefixed top-level field (or _id field) in the replacements Ferry writes`);
    }
    if (c.name === '_id' && !key.has('_id')) {
      out.push(`${name}: column "_id" is not in the primary key: it would collide with the documents' _id (the primary key)`);
    }
    if (c.name.endsWith(MICROS_SUFFIX) && timestamps.has(c.name.slice(0, -MICROS_SUFFIX.length))) {
      out.push(`${name}: column "${c.name}" collides with the sub-millisecond field Ferry writes next to timestamp column "${c.name.slice(0, -MICROS_SUFFIX.length)}"`);
    }
  }
  return out;
}

/** Throws one PreflightError naming every table and column the mapping cannot hold. */
export function refuseUnmappable(tables: readonly Pick<TableSchema, 'source' | 'columns' | 'primaryKey'>[]): void {
  const problems = tables.flatMap(pgToMongoProblems);
  if (!problems.length) return;
  throw new PreflightError(
    `PostgreSQL → MongoDB cannot hold ${problems.length === 1 ? 'this' : 'these'}:\n  - ${problems.join('\n  - ')}`,
    'give each such table a primary key of scalar columns (integer, text, uuid, numeric, bytea, timestamp(3), …), rename the columns on the source, or leave the table out with `exclude`',
  );
}
