/**
 * Planning a snapshot: describe the selected tables, check the target, partition every table into ranges and
 * store that plan with the flow, create the target tables, and add one job per range.
 *
 * Resumable at every step. The stored flow is the commit point: once it exists, a restarted planner re-derives
 * the same jobs from the stored ranges instead of sampling again (a second sample could overlap the first).
 */
import { createHash } from 'node:crypto';
import type { FlowRecord, JobRecord, PlannedRange, TableSchema } from '../model.js';
import { tableKey } from '../model.js';
import type { Selection, SnapshotSource } from '../ports/source.js';
import type { StateStore } from '../ports/state-store.js';
import type { SnapshotTarget } from '../ports/target.js';
import type { Json } from '../model.js';

export interface PlanOptions {
  flow: string;
  selection: Selection;
  rowsPerRange: number;
  truncate: boolean;
  /** Secret-free description of the config, stored with the flow. */
  summary: Json;
}

export interface PlanDeps {
  source: SnapshotSource;
  target: SnapshotTarget;
  store: StateStore;
  /** More checks that must pass before anything is written (e.g. the change source's preflight). */
  preflight?: (tables: TableSchema[]) => Promise<void>;
  /**
   * Writes on the source that must come before the target is touched (snapshot+cdc: the publication and the slot),
   * after every check passed. Called on every run, fresh or resumed.
   */
  prepareSource?: (tables: TableSchema[]) => Promise<void>;
}

export interface PlanResult {
  flow: FlowRecord;
  jobs: JobRecord[];
  resumed: boolean;
}

/** Describe and partition without writing anything anywhere (`ferry plan`). */
export async function describePlan(
  source: SnapshotSource,
  selection: Selection,
  rowsPerRange: number,
): Promise<{ tables: TableSchema[]; ranges: Record<string, PlannedRange[]> }> {
  const tables = await source.describe(selection);
  const ranges: Record<string, PlannedRange[]> = {};
  for (const t of tables) ranges[tableKey(t.source)] = await source.planRanges(t, rowsPerRange);
  return { tables, ranges };
}

export async function planSnapshot(deps: PlanDeps, opts: PlanOptions): Promise<PlanResult> {
  const { source, target, store } = deps;
  let flow = await store.getFlow(opts.flow);
  const resumed = flow !== undefined;
  if (!flow) {
    const { tables, ranges } = await describePlan(source, opts.selection, opts.rowsPerRange);
    // Everything is checked before anything is written anywhere: the source's checks, then the target's (with
    // `truncate`, rows on the target are expected and checked for shape only). Then the source is prepared, and
    // only then is the target written: truncated (the target's checks run again, right before), then created.
    await deps.preflight?.(tables);
    await target.preflight(tables, { truncate: false, resuming: opts.truncate });
    await deps.prepareSource?.(tables);
    if (opts.truncate) await target.preflight(tables, { truncate: true, resuming: false });
    const now = Date.now();
    flow = await store.createFlow({
      id: opts.flow,
      phase: 'planned',
      summary: opts.summary,
      tables,
      ranges,
      createdAt: now,
      updatedAt: now,
    });
  } else {
    await deps.preflight?.(flow.tables);
    await target.preflight(flow.tables, { truncate: false, resuming: true });
    await deps.prepareSource?.(flow.tables);
  }
  const jobs = jobsOf(flow);
  await store.addJobs(jobs);
  await target.createTables(flow.id, flow.tables);
  if (flow.phase === 'planned') {
    await store.updateFlow(flow.id, { phase: 'snapshot' });
    flow = { ...flow, phase: 'snapshot' };
  }
  return { flow, jobs: await store.listJobs(flow.id), resumed };
}

/** The jobs of a flow, derived only from what the flow record stores. */
export function jobsOf(flow: FlowRecord): JobRecord[] {
  const jobs: JobRecord[] = [];
  for (const t of flow.tables) {
    const key = tableKey(t.source);
    const ranges = flow.ranges[key] ?? [];
    ranges.forEach((r, i) => {
      jobs.push({
        flow: flow.id,
        id: jobId(key, i),
        table: key,
        range: r.range,
        label: r.label,
        estimatedRows: r.estimatedRows,
        status: 'pending',
        cursor: null,
        attempts: 0,
        rows: 0,
        bytes: 0,
        updatedAt: flow.createdAt,
      });
    });
  }
  return jobs;
}

/** Readable and unique: `<table>#<range index>`; table names may hold any character, so hash them. */
export function jobId(table: string, index: number): string {
  const safe = table.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 60);
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  return `${safe}~${hash}#${String(index).padStart(5, '0')}`;
}

/** A flow id from what identifies a migration: where from, where to (never secrets). */
export function defaultFlowId(parts: string[]): string {
  return `flow-${createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 12)}`;
}
