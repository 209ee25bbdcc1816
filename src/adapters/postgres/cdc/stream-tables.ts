/**
 * Tables and partitions that appear on the source while a flow streams (stream-hooks.ts, DESIGN 3 and 4): the
 * catalog poll that announces them with a marker in the source WAL, and the hook that adds an announced table to the
 * target (create, copy its rows, finalize) inside the open apply batch.
 */
import type pg from 'pg';
import { trackTable } from '../../../core/cdc/evolve-columns.js';
import type { HookResult } from '../../../core/cdc/evolve-contract.js';
import { diffLeaves, encodeMarker, PARTS_PREFIX, tablesToAdd, type PartsMarker } from '../../../core/cdc/evolve-tables.js';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import { renameTable } from '../../../core/selection.js';
import { queryJson, withEmptySearchPath } from '../catalog.js';
import { planOf } from '../ddl.js';
import { parsePgTableExtra } from '../extra.js';
import { describeTables } from '../introspect.js';
import * as Q from '../introspect-queries.js';
import { finalizeTables } from '../schema-target.js';
import { applyCreate } from '../target-ddl.js';
import type { pgBatch } from './change-target.js';
import { readLeaves, resyncRows } from './partitions.js';
import { oidOf, readCatalogColumns, readRelation } from './schema-evolution.js';
import { addToPublication } from './slot.js';
import type { PartsState } from './stream-tracked.js';

/** What discovery reads and updates besides the tracked relations (PgStreamParts holds it). */
export interface DiscoveryState extends PartsState {
  /** Leaves per partitioned root as last seen by the poller. */
  leaves: Map<string, TableName[]>;
  readonly announced: Set<string>;
  readonly pollConn: pg.Client | undefined;
  live(): Promise<void>;
  remember(leaves: ReadonlyMap<string, TableName[]>): void;
  pauseResult(root: string, reason: string): HookResult;
  learned(pb: NonNullable<ReturnType<typeof pgBatch>>, tables: TableSchema[]): HookResult | void;
}

/** One round of discovery: announce partitions attached/detached and tables created since the last round. */
export async function pollCatalog(s: DiscoveryState): Promise<PartsMarker[]> {
  await s.live();
  const p = s.pollConn;
  if (!p) throw new Error('PgStreamParts.start() was not called');
  const markers: PartsMarker[] = [];
  const partitioned = [...s.roots.values()].filter((t) => parsePgTableExtra(t.extra, tableKey(t.source)).partitioning);
  const now = await readLeaves(p, partitioned.map((t) => t.source));
  markers.push(...diffLeaves(s.leaves, now));
  s.leaves = now;
  s.remember(now);
  const candidates = await withEmptySearchPath(p, () => queryJson<TableName>(p, Q.CANDIDATES));
  const known = new Set([...s.roots.keys(), ...s.announced]);
  for (const t of tablesToAdd(candidates, s.opts.selection, known)) markers.push({ kind: 'table-added', table: t });
  for (const m of markers) {
    await p.query('BEGIN');
    try {
      if (m.kind === 'table-added') {
        const { rows } = await p.query<{ u: string }>(`SELECT (relpersistence = 'u')::text AS u FROM pg_class WHERE oid = to_regclass($1)`, [
          `"${m.table.schema.replace(/"/g, '""')}"."${m.table.name.replace(/"/g, '""')}"`,
        ]);
        if (rows[0]?.u !== 'true') await addToPublication(p, s.opts.flow, m.table);
        s.announced.add(tableKey(m.table));
      }
      await p.query(`SELECT pg_logical_emit_message(true, $1, $2)`, [PARTS_PREFIX, encodeMarker(m)]);
      await p.query('COMMIT');
    } catch (err) {
      await p.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
  return markers;
}

export async function addTable(s: DiscoveryState, pb: NonNullable<ReturnType<typeof pgBatch>>, table: TableName): Promise<HookResult | void> {
  const key = tableKey(table);
  // Known already: either the marker is replayed after a crash (the checkpoint is before it, so its copy may not
  // have committed) or the table was in the flow anyway. Creating and resyncing again is idempotent.
  if (/[*?]/.test(key) || table.schema.includes('.')) {
    s.opts.warn(`table ${key} was created on the source, but its name cannot be written as an include pattern: not added; restart the flow to take it on`);
    return;
  }
  const target = renameTable(table, s.opts.selection.rename);
  const rename = tableKey(target) === key ? {} : { [key]: tableKey(target) };
  let schema: TableSchema | undefined;
  try {
    [schema] = await describeTables(s.src, { include: [key], exclude: [], rename });
  } catch {
    return; // dropped again since it was announced
  }
  if (!schema) return;
  s.roots.set(key, schema);
  if (schema.primaryKey.length === 0) {
    return s.pauseResult(key, `${key}: created on the source while streaming, without a primary key; Ferry cannot copy it and replay its changes without duplicating rows, so it is not streamed. Add a primary key to it on the source and restart the flow (\`ferry reset\`, then \`ferry run\`), or exclude it.`);
  }
  const c = pb.connection;
  await withEmptySearchPath(c, () => applyCreate(c, planOf([schema])));
  const rows = await resyncRows(s.src, c, schema.source, schema.target, schema);
  const { warnings } = await finalizeTables(c, [schema], []);
  for (const w of warnings) s.opts.warn(w);
  const oid = await oidOf(s.src, table);
  if (oid !== undefined) s.byOid.set(String(oid), { key, root: key, t: trackTable(schema, await readCatalogColumns(s.src, oid)) });
  const extra = parsePgTableExtra(schema.extra, key);
  if (extra.partitioning) {
    s.leaves.set(key, extra.partitioning.partitions.filter((p) => !p.partitionBy).map((p) => p.source));
    s.remember(s.leaves);
  }
  const unlogged = oid !== undefined && (await readRelation(s.src, oid))?.unlogged;
  s.opts.warn(
    `table ${key} was created on the source and matches the flow's selection: created on the target as ${tableKey(schema.target)}, ${rows} rows copied, ` +
      (unlogged ? 'but it is UNLOGGED, so its later changes are not replicated (make it logged and restart the flow to stream it)' : 'streaming'),
  );
  s.opts.onTables?.([schema]);
  const learned: TableSchema[] = [schema];
  return s.learned(pb, learned);
}
