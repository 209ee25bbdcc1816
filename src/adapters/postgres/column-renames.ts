/**
 * Renamed columns (config `tables.<t>.renameColumns`) on the PostgreSQL target. The target table is created and
 * loaded under the source's column names, and finalize builds its indexes, constraints, triggers, policies and
 * comments from the source's own definitions; only then are the columns renamed, in one transaction, and
 * PostgreSQL carries the new names into every object that uses them. From then on the stream and verify use the
 * target names (core/cdc/column-map.ts targetView). Finalize runs again at cutover: a table already renamed has
 * had all of that built, so it is skipped then (its sequences are still set).
 */
import type pg from 'pg';
import { tableKey, type TableSchema } from '../../core/model.js';
import { ident, qualified } from './sql.js';

async function targetColumns(client: pg.ClientBase, t: TableSchema): Promise<Set<string>> {
  const { rows } = await client.query<{ a: string }>(
    `SELECT attname AS a FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
    [qualified(t.target)],
  );
  return new Set(rows.map((r) => r.a));
}

/** Source keys of the tables whose renames are done (every rename is applied in one transaction). */
export async function renamedTables(client: pg.ClientBase, tables: TableSchema[]): Promise<Set<string>> {
  const out = new Set<string>();
  for (const t of tables) {
    const renames = Object.entries(t.controls?.rename ?? {});
    if (renames.length === 0) continue;
    const have = await targetColumns(client, t);
    const [from, to] = renames[0]!;
    if (!have.has(from) && have.has(to)) out.add(tableKey(t.source));
  }
  return out;
}

/** Rename the target columns of every table with renames still to do; all or nothing. */
export async function applyColumnRenames(client: pg.ClientBase, tables: TableSchema[]): Promise<void> {
  const todo = tables.filter((t) => Object.keys(t.controls?.rename ?? {}).length > 0);
  if (todo.length === 0) return;
  await client.query('BEGIN');
  try {
    for (const t of todo) {
      const have = await targetColumns(client, t);
      for (const [from, to] of Object.entries(t.controls!.rename)) {
        if (have.has(from) && !have.has(to)) {
          await client.query(`ALTER TABLE ${qualified(t.target)} RENAME COLUMN ${ident(from)} TO ${ident(to)}`);
        }
      }
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
