/**
 * SQL that applies row changes so that replaying them converges: inserts upsert, updates set the columns present by
 * key, deletes delete by key. Values are the source's text forms, written as literals the target parses exactly as
 * a text COPY would: the same bytes as the snapshot for the same row.
 *
 * `GENERATED ALWAYS AS IDENTITY` columns: an INSERT may write them (OVERRIDING SYSTEM VALUE), but no UPDATE may,
 * not even the DO UPDATE of an upsert ("column can only be updated to DEFAULT"). Native logical replication writes
 * them because its apply bypasses the rewriter; SQL cannot. So they are never assigned: updates and upserts leave
 * them out, and `fixIdentity` then replaces (delete + insert OVERRIDING SYSTEM VALUE, in one statement) the rare
 * rows whose identity value differs from the source's (the source ran `SET col = DEFAULT`, or a replay). Ferry's
 * target sessions run with session_replication_role = replica, so that delete + insert fires no trigger and no
 * foreign key action.
 */
import type { ColumnSchema, TableSchema } from '../../../core/model.js';
import type { RowImage } from '../../../core/ports/change-source.js';
import { columnList, ident, literal, qualified } from '../sql.js';
import { targetRelation } from '../ranges.js';

export function keyOf(table: TableSchema, row: RowImage): string[] | undefined {
  const key: string[] = [];
  for (const c of table.primaryKey) {
    const v = row[c];
    if (v === undefined || v === null) return undefined;
    key.push(v);
  }
  return key;
}

const tuple = (values: string[]) => `(${values.join(', ')})`;

function lit(v: string | null | undefined): string {
  return v == null ? 'NULL' : literal(v);
}

function typed(v: string | null | undefined, col: ColumnSchema | undefined): string {
  return col ? `${lit(v)}::${col.type}` : lit(v);
}

export function keyPredicate(table: TableSchema, key: string[], alias?: string): string {
  const cols = table.primaryKey.map((c) => (alias ? `${alias}.${ident(c)}` : ident(c)));
  return `(${cols.join(', ')}) = ${tuple(key.map(lit))}`;
}

/** Multi-row upsert; rows share `columns`. Keyless tables get a plain insert. */
export function upsertValues(table: TableSchema, columns: string[], rows: RowImage[]): string {
  const values = rows.map((r) => tuple(columns.map((c) => lit(r[c])))).join(',\n');
  return `INSERT INTO ${qualified(table.target)} (${columnList(columns)}) OVERRIDING SYSTEM VALUE VALUES ${values}${onConflict(table, columns)}`;
}

export function upsertFromStage(table: TableSchema, stage: string, columns: string[]): string {
  return `INSERT INTO ${qualified(table.target)} (${columnList(columns)}) OVERRIDING SYSTEM VALUE
          SELECT ${columnList(columns)} FROM ${stage}${onConflict(table, columns)}`;
}

/** Columns declared GENERATED ALWAYS AS IDENTITY: writable by INSERT … OVERRIDING SYSTEM VALUE only. */
export function alwaysIdentity(table: TableSchema): Set<string> {
  return new Set(table.columns.filter((c) => c.identity === 'always').map((c) => c.name));
}

/** Identity ALWAYS columns outside the key that these rows carry: they need `fixIdentity` after an update. */
export function identityToFix(table: TableSchema, columns: string[]): string[] {
  const always = alwaysIdentity(table);
  return columns.filter((c) => always.has(c) && !table.primaryKey.includes(c));
}

/** `ON CONFLICT (key) DO UPDATE SET` every column given but the key and identity ALWAYS ones (keyless: nothing). */
export function onConflict(table: TableSchema, columns: string[]): string {
  if (table.primaryKey.length === 0) return '';
  const always = alwaysIdentity(table);
  const rest = columns.filter((c) => !table.primaryKey.includes(c) && !always.has(c));
  const target = ` ON CONFLICT (${columnList(table.primaryKey)})`;
  if (rest.length === 0) return `${target} DO NOTHING`;
  return `${target} DO UPDATE SET ${rest.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}`;
}

export function deleteKeys(table: TableSchema, keys: string[][]): string {
  return `DELETE FROM ${targetRelation(table)} WHERE (${columnList(table.primaryKey)}) IN (${keys.map((k) => tuple(k.map(lit))).join(', ')})`;
}

/**
 * One statement for many updates that set the same columns: UPDATE … FROM (VALUES …). RETURNING the keys it found
 * tells which rows are missing on the target.
 */
export function updateMany(table: TableSchema, columns: string[], rows: RowImage[]): string {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const keyCols = table.primaryKey;
  const always = alwaysIdentity(table);
  const setCols = columns.filter((c) => !keyCols.includes(c) && !always.has(c));
  const all = [...keyCols, ...setCols];
  const aliases = all.map((_, i) => `c${i}`);
  const values = rows.map((r) => tuple(all.map((c) => typed(r[c], byName.get(c))))).join(',\n');
  const match = keyCols.map((c, i) => `t.${ident(c)} = v.c${i}`).join(' AND ');
  const returning = keyCols.map((c) => `t.${ident(c)}::text`).join(', ');
  // With nothing to set (only unchanged TOAST or identity columns besides the key), a no-op assignment of a column
  // that may be assigned still finds the row; a table with none at all is only looked up.
  const noop = table.columns.find((c) => !always.has(c.name) && !c.generated)?.name;
  if (setCols.length === 0 && noop === undefined) {
    return `SELECT ${returning} FROM ${targetRelation(table)} AS t
            JOIN (VALUES ${values}) AS v(${aliases.join(', ')}) ON ${match}`;
  }
  const sets = setCols.length
    ? setCols.map((c, i) => `${ident(c)} = v.c${keyCols.length + i}`).join(', ')
    : `${ident(noop!)} = t.${ident(noop!)}`;
  return `UPDATE ${targetRelation(table)} AS t SET ${sets}
          FROM (VALUES ${values}) AS v(${aliases.join(', ')})
          WHERE ${match}
          RETURNING ${returning}`;
}

/**
 * Give rows (found by key) the identity ALWAYS values the source has, where they differ: the row is deleted and
 * inserted again OVERRIDING SYSTEM VALUE with its other columns as they are, in one statement. Rows that already
 * match are not touched.
 */
export function fixIdentity(table: TableSchema, identity: string[], rows: RowImage[]): string {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const keyCols = table.primaryKey;
  const all = [...keyCols, ...identity];
  const alias = new Map(all.map((c, i) => [c, `c${i}`]));
  const values = rows.map((r) => tuple(all.map((c) => typed(r[c], byName.get(c))))).join(',\n');
  const target = qualified(table.target);
  const cols = table.columns.filter((c) => !c.generated).map((c) => c.name);
  const onKey = (side: string) => keyCols.map((c) => `${side}.${ident(c)} = v.${alias.get(c)}`).join(' AND ');
  const differs = identity.map((c) => `t.${ident(c)} IS DISTINCT FROM v.${alias.get(c)}`).join(' OR ');
  return `WITH v(${all.map((c) => alias.get(c)).join(', ')}) AS (VALUES ${values}),
          d AS (DELETE FROM ${targetRelation(table)} AS t USING v WHERE ${onKey('t')} AND (${differs}) RETURNING t.*)
          INSERT INTO ${target} (${columnList(cols)}) OVERRIDING SYSTEM VALUE
          SELECT ${cols.map((c) => (identity.includes(c) ? `v.${alias.get(c)}` : `d.${ident(c)}`)).join(', ')}
          FROM d JOIN v ON ${onKey('d')}`;
}

/**
 * One row replaced in one statement: deleted where `where` finds it, inserted again OVERRIDING SYSTEM VALUE with
 * the columns `row` carries and its own values for the others (unchanged TOAST). For updates that must write an
 * identity ALWAYS column (a key move, a keyless table's row). Its row count is the rows it found.
 */
export function replaceRow(table: TableSchema, row: RowImage, where: string): string {
  const target = qualified(table.target);
  const cols = table.columns.filter((c) => !c.generated);
  const values = cols.map((c) => (c.name in row ? typed(row[c.name], c) : `d.${ident(c.name)}`));
  return `WITH d AS (DELETE FROM ${targetRelation(table)} WHERE ${where} RETURNING *)
          INSERT INTO ${target} (${columnList(cols.map((c) => c.name))}) OVERRIDING SYSTEM VALUE
          SELECT ${values.join(', ')} FROM d`;
}

/** Update by key, setting the columns present (the key too, when it moved). */
export function updateOne(table: TableSchema, row: RowImage, where: string): string {
  const cols = Object.keys(row);
  return `UPDATE ${targetRelation(table)} SET ${cols.map((c) => `${ident(c)} = ${lit(row[c])}`).join(', ')} WHERE ${where}`;
}

/** A keyless row matched on its old values (REPLICA IDENTITY FULL), compared as text so every type compares. */
export function matchOldRow(table: TableSchema, old: RowImage): string {
  const conds = Object.entries(old).map(([c, v]) => (v === null ? `${ident(c)} IS NULL` : `${ident(c)}::text = ${literal(v)}`));
  return `ctid = (SELECT ctid FROM ${targetRelation(table)} WHERE ${conds.join(' AND ') || 'true'} LIMIT 1)`;
}

export function truncate(tables: TableSchema[], cascade: boolean, restartIdentity: boolean): string {
  return `TRUNCATE ${tables.map(targetRelation).join(', ')}${restartIdentity ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`;
}
