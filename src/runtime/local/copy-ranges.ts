/**
 * The snapshot's copy phase in one process: every unfinished job into an in-memory queue (rebuilt from the state
 * store at each start, so nothing is lost with the process), N workers over it.
 */
import { MemoryJobQueue } from '../../adapters/memory/memory-job-queue.js';
import type { LoadedConfig } from '../../config/load.js';
import { tableKey, type FlowRecord, type JobRecord, type TableSchema } from '../../core/model.js';
import type { SnapshotSource } from '../../core/ports/source.js';
import type { StateStore } from '../../core/ports/state-store.js';
import type { SnapshotTarget } from '../../core/ports/target.js';
import type { ProgressSink, TablePlan } from '../../core/progress.js';
import { processJob } from '../../core/snapshot/process-job.js';
import { runWorkerLoop } from '../../core/snapshot/worker-loop.js';
import { snapshotBuckets, throttledSource } from '../../core/throttle.js';

const VISIBILITY_MS = 120_000;

export interface CopyRangesDeps {
  source: SnapshotSource;
  target: SnapshotTarget;
  store: StateStore;
  progress: ProgressSink;
}

export async function copyRanges(
  deps: CopyRangesDeps,
  flow: FlowRecord,
  jobs: JobRecord[],
  opts: { config: LoadedConfig; owner: string; signal?: AbortSignal },
): Promise<void> {
  const { config } = opts;
  const keyless = new Set(flow.tables.filter((t) => t.primaryKey.length === 0).map((t) => tableKey(t.source)));
  // Keyless tables first: they are the ones that need the exported snapshot, which lasts only while we run.
  const todo = jobs
    .filter((j) => j.status !== 'done')
    .sort((a, b) => Number(keyless.has(b.table)) - Number(keyless.has(a.table)));
  if (todo.length === 0) return;
  const queue = new MemoryJobQueue();
  await queue.enqueue(todo.map((j) => ({ flow: j.flow, id: j.id, table: j.table, range: j.range, cursor: j.cursor, attempt: j.attempts })));
  const tables = new Map<string, TableSchema>(flow.tables.map((t) => [tableKey(t.source), t]));
  // One bucket for all the workers of this process: the config's snapshot limits hold across them.
  const jobDeps = { ...deps, source: throttledSource(deps.source, snapshotBuckets(config.limits)), tables };
  try {
    await runWorkerLoop(
      queue,
      (d) =>
        processJob(jobDeps, d.job, d.receiveCount, {
          owner: opts.owner,
          batchRows: config.batchRows,
          deadline: Date.now() + config.jobTimeBudgetSeconds * 1000,
          signal: opts.signal,
          maxAttempts: config.maxAttempts,
          leaseMs: VISIBILITY_MS,
          heartbeat: () => queue.extend(d.receipt, VISIBILITY_MS),
        }),
      { workers: config.workers, visibilityMs: VISIBILITY_MS, outstanding: todo.length, signal: opts.signal },
    );
  } finally {
    await queue.close();
  }
}

export function tablePlans(flow: FlowRecord, jobs: JobRecord[]): TablePlan[] {
  return flow.tables.map((t) => {
    const key = tableKey(t.source);
    const mine = jobs.filter((j) => j.table === key);
    return {
      table: key,
      target: tableKey(t.target),
      estimatedRows: Math.max(t.estimatedRows, 0),
      estimatedBytes: Math.max(t.estimatedBytes, 0),
      jobs: mine.length,
      doneRows: mine.reduce((n, j) => n + j.rows, 0),
      doneBytes: mine.reduce((n, j) => n + j.bytes, 0),
      doneJobs: mine.filter((j) => j.status === 'done').length,
    };
  });
}
