/**
 * What the PostgreSQL stream hooks (stream-hooks.ts) remember about each relation they track, and where that memory
 * is kept on the target: `_ferry.cdc_tracked`, written in the open apply batch, so it commits atomically with the
 * DDL it describes; a restarted session reconciles its view of each root with what the target committed.
 */
import type pg from 'pg';
import type { ColumnStep, TrackedTable } from '../../../core/cdc/evolve-columns.js';
import { trackTable } from '../../../core/cdc/evolve-columns.js';
import { leafSchema } from '../../../core/cdc/evolve-tables.js';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import { parsePgTableExtra } from '../extra.js';
import { oidOf, readCatalogColumns } from './schema-evolution.js';
import type { PgStreamPartsOptions } from './stream-hooks.js';

export interface Tracked {
  /** The published name (`schema.name`) of this relation. */
  key: string;
  root: string;
  t: TrackedTable;
}

/** The hooks' state that the functions here read and update (PgStreamParts holds it). */
export interface PartsState {
  readonly opts: PgStreamPartsOptions;
  readonly roots: Map<string, TableSchema>;
  readonly byOid: Map<string, Tracked>;
  readonly src: pg.Client;
  /** Roots whose columns were checked against the target table this session (see reconcileRoot). */
  readonly reconciled: Set<string>;
}

/**
 * The first time a root is seen in a session, take its columns from the target table: the DDL a hook ran
 * committed atomically with the flow's position, but `onTables` persisted the schema before that commit, so after
 * a crash the recorded schema can be ahead of the target. The target is what was applied; evolving from it replays
 * exactly the steps the target lacks.
 */
export async function reconcileRoot(s: PartsState, conn: pg.ClientBase, rootKey: string): Promise<void> {
  if (s.reconciled.has(rootKey)) return;
  s.reconciled.add(rootKey);
  // What the target committed last: tracked columns with their source attnums (saveTracked), when any.
  const saved = await loadTracked(conn, s.opts.flow);
  const mine = [...s.byOid].filter(([id, e]) => e.root === rootKey && saved.has(id));
  if (mine.length > 0) {
    const [sampleId] = mine.find(([, e]) => e.key === rootKey) ?? mine[0]!;
    const last = saved.get(sampleId)!.schema;
    const fixed: TableSchema = { ...s.roots.get(rootKey)!, columns: last.columns, primaryKey: last.primaryKey };
    s.roots.set(rootKey, fixed);
    for (const [id, e] of s.byOid) {
      if (e.root !== rootKey) continue;
      const schema = e.key === rootKey ? fixed : leafSchema(fixed, e.t.schema.source, e.t.schema.target);
      const t = saved.get(id);
      e.t = t ? { ...t, schema } : trackTable(schema, await readCatalogColumns(s.src, id));
    }
    return;
  }
  const root = s.roots.get(rootKey)!;
  const oid = await oidOf(conn, root.target);
  if (oid === undefined) return;
  // Renamed columns (config tables.<t>.renameColumns) are compared under their source names.
  const back = new Map(Object.entries(root.controls?.rename ?? {}).map(([from, to]) => [to, from]));
  const onTarget = (await readCatalogColumns(conn, oid))
    .filter((c) => !c.generated)
    .map((c) => (back.has(c.name) ? { ...c, name: back.get(c.name)! } : c));
  const streamed = root.columns.filter((c) => !c.generated);
  const same = onTarget.length === streamed.length && onTarget.every((c) => streamed.some((x) => x.name === c.name));
  if (same) return;
  const byName = new Map(root.columns.map((c) => [c.name, c]));
  const columns = [
    ...onTarget.map((c) => {
      const { attnum: _a, typeOid: _o, typeMod: _m, ...col } = c;
      return byName.get(c.name) ?? col;
    }),
    ...root.columns.filter((c) => c.generated),
  ];
  const fixed: TableSchema = { ...root, columns };
  s.roots.set(rootKey, fixed);
  for (const [id, e] of s.byOid) {
    if (e.root !== rootKey) continue;
    const schema = e.key === rootKey ? fixed : leafSchema(fixed, e.t.schema.source, e.t.schema.target);
    e.t = trackTable(schema, await readCatalogColumns(s.src, id));
  }
}

/** Record the tracked columns of a root's relations in the open batch: they commit with the DDL they describe. */
export async function saveTracked(s: PartsState, conn: pg.ClientBase, rootKey: string): Promise<void> {
  await conn.query(TRACKED_DDL);
  for (const [id, e] of s.byOid) {
    if (e.root !== rootKey) continue;
    await conn.query(
      `INSERT INTO _ferry.cdc_tracked (flow, relid, tracked) VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (flow, relid) DO UPDATE SET tracked = EXCLUDED.tracked`,
      [s.opts.flow, id, JSON.stringify(e.t)],
    );
  }
}

export const TRACKED_DDL = `CREATE TABLE IF NOT EXISTS _ferry.cdc_tracked (flow text, relid text, tracked jsonb NOT NULL, PRIMARY KEY (flow, relid))`;

/** Tracked relations of a flow as the target last committed them (source OID -> TrackedTable). */
export async function loadTracked(conn: pg.ClientBase, flow: string): Promise<Map<string, TrackedTable>> {
  const { rows } = await conn.query<{ e: string | null }>(`SELECT to_regclass('_ferry.cdc_tracked')::text AS e`);
  if (!rows[0]?.e) return new Map();
  const r = await conn.query<{ relid: string; tracked: string }>(`SELECT relid, tracked::text AS tracked FROM _ferry.cdc_tracked WHERE flow = $1`, [flow]);
  return new Map(r.rows.map((x) => [x.relid, JSON.parse(x.tracked) as TrackedTable]));
}

/** The leaves the flow recorded at plan time (partitions that are not themselves partitioned). */
export function recordedLeaves(tables: TableSchema[]): Map<string, TableName[]> {
  const out = new Map<string, TableName[]>();
  for (const t of tables) {
    const p = parsePgTableExtra(t.extra, tableKey(t.source)).partitioning;
    if (p) out.set(tableKey(t.source), p.partitions.filter((x) => !x.partitionBy).map((x) => x.source));
  }
  return out;
}

export function parseKey(key: string): TableName {
  const dot = key.indexOf('.');
  return { schema: key.slice(0, dot), name: key.slice(dot + 1) };
}

/** Attnums and types of a sibling relation, carried through the renames another relation's message revealed. */
export function remap(t: TrackedTable, steps: ColumnStep[]): TrackedTable {
  const attnums = { ...t.attnums };
  const types = { ...t.types };
  for (const s of steps) {
    if (s.op === 'rename') {
      if (attnums[s.from] !== undefined) attnums[s.to] = attnums[s.from]!;
      if (types[s.from] !== undefined) types[s.to] = types[s.from]!;
      delete attnums[s.from];
      delete types[s.from];
    } else if (s.op === 'drop') {
      delete attnums[s.column];
      delete types[s.column];
    }
  }
  return { ...t, attnums, types };
}

export function describeSteps(steps: ColumnStep[]): string {
  return steps
    .map((s) => (s.op === 'add' ? `ADD COLUMN ${s.column.name} ${s.column.type}` : s.op === 'drop' ? `DROP COLUMN ${s.column}` : `RENAME COLUMN ${s.from} TO ${s.to}`))
    .join(', ');
}
