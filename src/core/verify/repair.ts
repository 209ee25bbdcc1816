/**
 * `ferry verify --repair`: copy the differing ranges again, through the same exactly-once chunk path as the
 * snapshot (each chunk deletes its key range and loads it in one target transaction). A keyless table has no range
 * to delete by: it is emptied and copied whole.
 */
import { tableKey, type FlowRecord, type Job, type Json, type TableSchema } from '../model.js';
import type { SnapshotSource } from '../ports/source.js';
import type { SnapshotTarget } from '../ports/target.js';
import { copyRange } from '../snapshot/copy-range.js';
import { mapLimit, targetSide, type RangeDiff } from './verify.js';

export async function repairRanges(
  deps: { source: SnapshotSource; target: SnapshotTarget },
  flow: FlowRecord,
  diffs: RangeDiff[],
  opts: {
    batchRows: number;
    concurrency: number;
    /**
     * Cross-engine targets load a range without deleting what it held first (the other engine's bounds are not
     * theirs): delete it here, with the predicate verify compared, before the range is copied again.
     */
    clearRange?: (table: TableSchema, range: Json) => Promise<void>;
    /** The table the target is given (default targetSide; cross-engine bridges map the source's schema themselves). */
    targetTable?: (flow: FlowRecord, t: TableSchema) => TableSchema;
  },
): Promise<number> {
  const side = opts.targetTable ?? targetSide;
  const tables = new Map(flow.tables.map((t) => [tableKey(t.source), t]));
  // The target side under its own column names (see targetSide); the source reads kept columns under the filter.
  const inner = deps.target;
  const target: SnapshotTarget = {
    capabilities: inner.capabilities,
    accepts: inner.accepts,
    preflight: (t, o) => inner.preflight(t, o),
    createTables: (f, t) => inner.createTables(f, t),
    openRange: (f, id, t) => inner.openRange(f, id, side(flow, t)),
    finalize: (f, t, s) => inner.finalize(f, t, s),
    resetTable: (t) => inner.resetTable(side(flow, t)),
    close: () => inner.close(),
  };
  deps = { ...deps, target };
  const run = `repair-${Date.now().toString(36)}`;
  const jobs: Job[] = [];
  for (const [i, d] of diffs.entries()) {
    const table = tables.get(d.table)!;
    if (d.range !== null) {
      await opts.clearRange?.(table, d.range);
      jobs.push({ flow: flow.id, id: `${run}#${i}`, table: d.table, range: d.range, cursor: null, attempt: 0 });
      continue;
    }
    await deps.target.resetTable(table);
    (flow.ranges[d.table] ?? []).forEach((r, j) =>
      jobs.push({ flow: flow.id, id: `${run}#${i}.${j}`, table: d.table, range: r.range, cursor: null, attempt: 0 }),
    );
  }
  await mapLimit(jobs, opts.concurrency, (job) =>
    copyRange(deps, job, tables.get(job.table)!, { batchRows: opts.batchRows, deadline: Number.POSITIVE_INFINITY }),
  );
  return jobs.length;
}
