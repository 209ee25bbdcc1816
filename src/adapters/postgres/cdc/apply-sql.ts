/**
 * SQL that applies row changes so that replaying them converges: inserts upsert, updates set the columns present by
 * key, deletes delete by key. Values are the source's text forms, written as literals the target parses exactly as
 * a text COPY would: the same bytes as the snapshot for the same row.
 */
import type { ColumnSchema, TableSchema } from '../../../core/model.js';
import type { RowImage } from '../../../core/ports/change-source.js';
import { columnList, ident, literal, qualified } from '../sql.js';

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

function onConflict(table: TableSchema, columns: string[]): string {
  if (table.primaryKey.length === 0) return '';
  const rest = columns.filter((c) => !table.primaryKey.includes(c));
  const target = ` ON CONFLICT (${columnList(table.primaryKey)})`;
  if (rest.length === 0) return `${target} DO NOTHING`;
  return `${target} DO UPDATE SET ${rest.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ')}`;
}

export function deleteKeys(table: TableSchema, keys: string[][]): string {
  return `DELETE FROM ${qualified(table.target)} WHERE (${columnList(table.primaryKey)}) IN (${keys.map((k) => tuple(k.map(lit))).join(', ')})`;
}

/**
 * One statement for many updates that set the same columns: UPDATE … FROM (VALUES …). RETURNING the keys it found
 * tells which rows are missing on the target.
 */
export function updateMany(table: TableSchema, columns: string[], rows: RowImage[]): string {
  const byName = new Map(table.columns.map((c) => [c.name, c]));
  const keyCols = table.primaryKey;
  const setCols = columns.filter((c) => !keyCols.includes(c));
  const all = [...keyCols, ...setCols];
  const aliases = all.map((_, i) => `c${i}`);
  const values = rows.map((r) => tuple(all.map((c) => typed(r[c], byName.get(c))))).join(',\n');
  // With nothing to set (only unchanged TOAST columns besides the key), a no-op assignment still finds the row.
  const sets = setCols.length
    ? setCols.map((c, i) => `${ident(c)} = v.c${keyCols.length + i}`).join(', ')
    : `${ident(keyCols[0]!)} = t.${ident(keyCols[0]!)}`;
  const match = keyCols.map((c, i) => `t.${ident(c)} = v.c${i}`).join(' AND ');
  return `UPDATE ${qualified(table.target)} AS t SET ${sets}
          FROM (VALUES ${values}) AS v(${aliases.join(', ')})
          WHERE ${match}
          RETURNING ${keyCols.map((c) => `t.${ident(c)}::text`).join(', ')}`;
}

/** Update by key, setting the columns present (the key too, when it moved). */
export function updateOne(table: TableSchema, row: RowImage, where: string): string {
  const cols = Object.keys(row);
  return `UPDATE ${qualified(table.target)} SET ${cols.map((c) => `${ident(c)} = ${lit(row[c])}`).join(', ')} WHERE ${where}`;
}

/** A keyless row matched on its old values (REPLICA IDENTITY FULL), compared as text so every type compares. */
export function matchOldRow(table: TableSchema, old: RowImage): string {
  const conds = Object.entries(old).map(([c, v]) => (v === null ? `${ident(c)} IS NULL` : `${ident(c)}::text = ${literal(v)}`));
  return `ctid = (SELECT ctid FROM ${qualified(table.target)} WHERE ${conds.join(' AND ') || 'true'} LIMIT 1)`;
}

export function truncate(tables: TableSchema[], cascade: boolean, restartIdentity: boolean): string {
  return `TRUNCATE ${tables.map((t) => qualified(t.target)).join(', ')}${restartIdentity ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`;
}

/** COPY text format for one row: the text forms with \\, tab, newline and CR escaped; NULL as \N. */
export function copyLine(columns: string[], row: RowImage): string {
  return `${columns.map((c) => {
    const v = row[c];
    return v == null ? '\\N' : v.replace(/[\\\t\n\r]/g, (ch) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r'));
  }).join('\t')}\n`;
}
