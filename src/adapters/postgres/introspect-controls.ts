/**
 * The config's per-table controls (`tables`: excludeColumns, renameColumns, where) applied to described tables,
 * checked against the source: unknown or key columns and clashing renames are refused by core/selection.ts, a row
 * filter by the source itself (EXPLAIN, which plans the query without running it). Also decides what the flow's
 * publication does itself (PostgreSQL 15+ column lists and row filters) and what Ferry does on the changes.
 */
import type pg from 'pg';
import { mentionedColumns } from '../../core/cdc/column-map.js';
import { ConfigError, errorMessage } from '../../core/errors.js';
import { tableKey, type TableSchema } from '../../core/model.js';
import type { Selection } from '../../core/ports/source.js';
import { assertTableControlsMatch, resolveTableControls, tableControlsFor } from '../../core/selection.js';
import type { PgTableExtra } from './extra.js';
import { readFrom } from './ranges.js';
import { columnList, ident, qualified } from './sql.js';

/** PostgreSQL 15 added column lists and row filters (`FOR TABLE t (a, b) WHERE (...)`) to publications. */
const PUBLICATION_FILTERS = 150000;

/** The row filter as a conjunct for a source query's WHERE (`''` when the table has none). */
export function rowFilter(t: TableSchema): string {
  return t.controls?.where ? ` AND (${t.controls.where})` : '';
}

export async function applyTableControls(client: pg.ClientBase, tables: TableSchema[], selection: Selection): Promise<void> {
  if (Object.keys(selection.tables ?? {}).length === 0) return;
  assertTableControlsMatch(tables.map((t) => t.source), selection);
  const { rows } = await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
  const version = Number(rows[0]?.v ?? 0);
  for (const t of tables) {
    const cfg = tableControlsFor(t.source, selection);
    if (!cfg) continue;
    const r = resolveTableControls(t.source, t.columns, t.primaryKey, cfg);
    if (r.where) await checkFilter(client, t, r.where);
    const extra = t.extra as PgTableExtra;
    const gone = new Set(r.excluded);
    const dropped: string[] = [];
    if (gone.size > 0) {
      const names = t.columns.map((c) => c.name);
      const mentions = (sql: string) => mentionedColumns(sql, names).some((c) => gone.has(c));
      // Indexes and constraints over an excluded column cannot exist on the target: they are left out (said by plan).
      extra.indexes = extra.indexes.filter((i) => (mentions(i.using) ? (dropped.push(`index ${i.name}`), false) : true));
      extra.constraints = extra.constraints.filter((k) => {
        const local = k.type === 'foreign' ? k.definition.split(/\bREFERENCES\b/)[0]! : k.definition;
        return mentions(local) ? (dropped.push(`constraint ${k.name}`), false) : true;
      });
      extra.sequences = extra.sequences.filter((s) => !gone.has(s.column));
      extra.collations = extra.collations.filter((c) => !gone.has(c.column));
      extra.virtualColumns = extra.virtualColumns.filter((c) => !gone.has(c));
      t.columns = t.columns.filter((c) => !gone.has(c.name));
    }
    const plain = extra.partitioning === null;
    const identity =
      extra.replicaIdentity.mode === 'full' ? t.columns.map((c) => c.name) : extra.replicaIdentity.mode === 'default' ? t.primaryKey : [];
    const filterCols = r.where ? mentionedColumns(r.where, t.columns.map((c) => c.name)) : [];
    t.controls = {
      excluded: r.excluded,
      rename: r.rename,
      ...(r.where ? { where: r.where } : {}),
      published: {
        // A column list must cover the replica identity: with REPLICA IDENTITY FULL that is every column.
        columns: version >= PUBLICATION_FILTERS && plain && r.excluded.length > 0 && extra.replicaIdentity.mode !== 'full',
        // A row filter over a column outside the replica identity would make every UPDATE and DELETE of the table
        // fail on the source: then Ferry filters the changes itself.
        where:
          version >= PUBLICATION_FILTERS &&
          plain &&
          !!r.where &&
          filterCols.every((c) => identity.includes(c)) &&
          (await publishable(client, t, r.where)),
      },
    };
    if (dropped.length > 0) t.controls.dropped = dropped;
  }
}

/** The filter must be one boolean expression the source can evaluate on the table: EXPLAIN plans it, runs nothing. */
async function checkFilter(client: pg.ClientBase, t: TableSchema, where: string): Promise<void> {
  try {
    await client.query(`EXPLAIN SELECT 1 FROM ${readFrom(t)} WHERE (${where})`);
  } catch (err) {
    throw new ConfigError(
      `tables."${tableKey(t.source)}".where: the source refuses the row filter \`${where}\`: ${errorMessage(err)}`,
      `write one boolean SQL expression over the table's columns (${t.columns.map((c) => c.name).join(', ')}), e.g. region = 'eu'; schema-qualify your own functions`,
    );
  }
}

/**
 * Whether the source accepts the filter in a publication (PostgreSQL allows only columns, constants and built-in
 * immutable functions there): tried in a transaction that is rolled back. A refusal for lack of privileges is
 * left to the real publication, whose creation will say so.
 */
async function publishable(client: pg.ClientBase, t: TableSchema, where: string): Promise<boolean> {
  const cols = t.columns.filter((c) => !c.generated).map((c) => c.name);
  try {
    await client.query('BEGIN');
    await client.query(`CREATE PUBLICATION ${ident(`ferry_check_${process.pid}`)} FOR TABLE ${qualified(t.source)} (${columnList(cols)}) WHERE (${where})`);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === '42501';
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}
