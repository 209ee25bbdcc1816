/**
 * Set-based apply statements with their values as array parameters: one prepared statement per table and shape,
 * `SELECT unnest($1::t1[]), unnest($2::t2[]), …` standing for the rows. Compared with literals in the statement text (VALUES lists),
 * the target parses and plans each shape once per connection instead of once per call, and Ferry builds one short
 * array literal per column instead of a quoted, typed literal per value.
 *
 * Why the values stay exact: an array parameter `$1::T[]` is read by array_in, which hands each element's text to
 * T's own input function, the same function a literal `'…'::T` or a text COPY calls. Every element is written
 * double-quoted (only `"` and `\` escaped inside), so braces, commas, spaces, the word NULL and empty strings are
 * taken as they are; a SQL NULL is the unquoted NULL. This does not hold for a column whose type is itself an array
 * (`int[]`: PostgreSQL has no array of arrays, `int[][]` is the same type), so shapes that involve such a column are
 * not built here (`arraysFit`), and the caller keeps the literal statements for them.
 *
 * Plans: the batch runs with `plan_cache_mode = force_generic_plan` (change-target.ts), so each statement is planned
 * once, without the array sizes: a nested loop over the key index (as native apply does per row), never a hash
 * join over a scan of a large table that a custom plan for a long array might choose.
 */
import type { ColumnSchema, TableSchema } from '../../../core/model.js';
import type { RowImage } from '../../../core/ports/change-source.js';
import { targetRelation } from '../ranges.js';
import { columnList, ident, qualified } from '../sql.js';

const ARRAY_SPECIAL = /["\\]/;
const ARRAY_ESCAPE = /["\\]/g;

/** One column of `rows` as an array literal of its text forms (absent or null: NULL). */
export function arrayLiteral(rows: readonly RowImage[], column: string): string {
  let out = '{';
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]![column];
    if (i > 0) out += ',';
    if (v == null) out += 'NULL';
    else if (ARRAY_SPECIAL.test(v)) out += `"${v.replace(ARRAY_ESCAPE, '\\$&')}"`;
    else out += `"${v}"`;
  }
  return `${out}}`;
}

/** The parameters of a statement built here: one array literal per column, in the statement's column order. */
export function arrayParams(rows: readonly RowImage[], columns: readonly string[]): string[] {
  const out = new Array<string>(columns.length);
  for (let i = 0; i < columns.length; i++) out[i] = arrayLiteral(rows, columns[i]!);
  return out;
}

/** Can these columns travel as array parameters? Not when one's type is an array itself (see the header). */
export function arraysFit(table: TableSchema, columns: readonly string[]): boolean {
  for (const name of columns) {
    const col = table.columns.find((c) => c.name === name);
    if (!col || col.type.endsWith(']')) return false;
  }
  return true;
}

/**
 * The rows as a relation `v(c0, …)` over `columns`, parameters numbered from $1: one unnest per column in the select
 * list, where they run in lockstep. Not `FROM unnest($1, $2, …)`: in FROM a composite element type is expanded
 * into its fields, shifting every column after it. `withOrdinality` adds `i`, each row's position (1-based).
 */
function unnest(table: TableSchema, columns: readonly string[], withOrdinality = false): string {
  const byName = new Map<string, ColumnSchema>(table.columns.map((c) => [c.name, c]));
  const cols = columns.map((c, i) => `unnest($${i + 1}::${byName.get(c)!.type}[]) AS c${i}`);
  if (withOrdinality) cols.push(`generate_subscripts($1::${byName.get(columns[0]!)!.type}[], 1) AS i`);
  return `(SELECT ${cols.join(', ')}) AS v`;
}

const keyMatch = (table: TableSchema, alias: string) => table.primaryKey.map((c, i) => `${alias}.${ident(c)} = v.c${i}`).join(' AND ');

/**
 * Update by key the columns `setCols` (the key columns come first in the parameters: key, then setCols). Its row
 * count is the rows it found: keys are distinct, so a count below the rows given means some are missing.
 * `noop`: with nothing to set, an assignable column set to itself still finds the row; without one, only a lookup.
 */
export function updateStatement(table: TableSchema, setCols: readonly string[], noop: string | undefined): string {
  const k = table.primaryKey.length;
  const from = unnest(table, [...table.primaryKey, ...setCols]);
  if (setCols.length === 0 && noop === undefined) return `SELECT 1 FROM ${targetRelation(table)} AS t JOIN ${from} ON ${keyMatch(table, 't')}`;
  const sets = setCols.length ? setCols.map((c, i) => `${ident(c)} = v.c${k + i}`).join(', ') : `${ident(noop!)} = t.${ident(noop!)}`;
  return `UPDATE ${targetRelation(table)} AS t SET ${sets} FROM ${from} WHERE ${keyMatch(table, 't')}`;
}

/** The positions (1-based) of the keys given that the target table does not hold. */
export function missingStatement(table: TableSchema): string {
  return `SELECT v.i::int AS i FROM ${unnest(table, table.primaryKey, true)}
          WHERE NOT EXISTS (SELECT 1 FROM ${targetRelation(table)} AS t WHERE ${keyMatch(table, 't')})`;
}

/** Delete by key (parameters: the key columns). */
export function deleteStatement(table: TableSchema): string {
  if (table.primaryKey.length === 1) {
    const c = table.columns.find((x) => x.name === table.primaryKey[0])!;
    return `DELETE FROM ${targetRelation(table)} WHERE ${ident(c.name)} = ANY ($1::${c.type}[])`;
  }
  return `DELETE FROM ${targetRelation(table)} AS t USING ${unnest(table, table.primaryKey)} WHERE ${keyMatch(table, 't')}`;
}

/** Insert whole rows, overwriting the row of a key that exists (keys distinct); a keyless table gets a plain insert. */
export function upsertStatement(table: TableSchema, columns: readonly string[], onConflict: string): string {
  return `INSERT INTO ${qualified(table.target)} (${columnList(columns)}) OVERRIDING SYSTEM VALUE
          SELECT * FROM ${unnest(table, columns)}${onConflict}`;
}

/** Statement names by text, for the whole process: a name always means one text, on every connection. */
const names = new Map<string, string>();
/** Beyond this many shapes, new ones run unnamed (planned per call) rather than grow every connection's cache. */
const MAX_NAMED = 2000;

/** A query config that runs `text` as a named prepared statement (parsed once per connection). */
export function prepared(text: string, values: string[]): { text: string; values: string[]; name?: string } {
  let name = names.get(text);
  if (name === undefined && names.size < MAX_NAMED) {
    name = `ferry_apply_${names.size + 1}`;
    names.set(text, name);
  }
  return name === undefined ? { text, values } : { name, text, values };
}
