/**
 * The local composition root: one process, N workers, an in-memory queue rebuilt from the SQLite state store at
 * every start. Killed at any point (even SIGKILL) and run again, it resumes: finished ranges are kept, and the
 * target's own progress markers make every partly-copied range carry on where it committed last.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import { MemoryJobQueue } from '../../adapters/memory/memory-job-queue.js';
import type { LoadedConfig } from '../../config/load.js';
import { tableKey, type FlowRecord, type JobRecord, type TableSchema } from '../../core/model.js';
import type { ProgressSink, TablePlan } from '../../core/progress.js';
import { finalizeSnapshot } from '../../core/snapshot/finalize.js';
import { planSnapshot } from '../../core/snapshot/plan.js';
import { processJob } from '../../core/snapshot/process-job.js';
import { runWorkerLoop } from '../../core/snapshot/worker-loop.js';
import { openLocalStateStore } from './state.js';
import { configSummary, flowIdOf } from './flow-id.js';
import { FerryError } from '../../core/errors.js';

export interface LocalRunOptions {
  config: LoadedConfig;
  progress: ProgressSink;
  signal?: AbortSignal;
}

export interface LocalRunResult {
  flow: string;
  resumed: boolean;
  warnings: string[];
  /** True when stopped by the signal before the end (state is kept; run again to resume). */
  interrupted: boolean;
}

const VISIBILITY_MS = 120_000;
const RUNNER_LEASE_MS = 10_000;

export async function runSnapshot(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { config, progress } = opts;
  const flowId = flowIdOf(config);
  const store = await openLocalStateStore(config.state.path);
  const owner = `${hostname()}:${process.pid}`;
  const lease = `runner:${flowId}`;
  const source = new PgSnapshotSource(config.source, { connections: config.workers + 1 });
  const target = new PgSnapshotTarget(config.target, { connections: config.workers + 1 });
  let renew: NodeJS.Timeout | undefined;
  try {
    await takeRunnerLease(store, lease, owner, progress);
    renew = setInterval(() => void store.acquireLease(lease, owner, Date.now() + RUNNER_LEASE_MS).catch(() => {}), 3000);
    renew.unref();

    progress.phase('plan');
    const { flow, jobs, resumed } = await planSnapshot(
      { source, target, store },
      {
        flow: flowId,
        selection: { include: config.include, exclude: config.exclude, rename: config.rename },
        rowsPerRange: config.rowsPerRange,
        truncate: config.target.onExistingRows === 'truncate',
        summary: configSummary(config),
      },
    );
    progress.planned(tablePlans(flow, jobs));

    if (flow.phase === 'snapshot' || flow.phase === 'planned') {
      progress.phase('snapshot');
      const todo = jobs.filter((j) => j.status !== 'done');
      const queue = new MemoryJobQueue();
      await queue.enqueue(todo.map((j) => ({ flow: j.flow, id: j.id, table: j.table, range: j.range, cursor: j.cursor, attempt: j.attempts })));
      const tables = new Map<string, TableSchema>(flow.tables.map((t) => [tableKey(t.source), t]));
      const deps = { source, target, store, progress, tables };
      await runWorkerLoop(
        queue,
        (d) =>
          processJob(deps, d.job, d.receiveCount, {
            owner,
            batchRows: config.batchRows,
            deadline: Date.now() + config.jobTimeBudgetSeconds * 1000,
            signal: opts.signal,
            maxAttempts: config.maxAttempts,
            leaseMs: VISIBILITY_MS,
            heartbeat: () => queue.extend(d.receipt, VISIBILITY_MS),
          }),
        { workers: config.workers, visibilityMs: VISIBILITY_MS, outstanding: todo.length, signal: opts.signal },
      );
      await queue.close();
      if (opts.signal?.aborted) return { flow: flowId, resumed, warnings: [], interrupted: true };
    }

    let warnings: string[] = [];
    if (flow.phase !== 'done') {
      progress.phase('finalize');
      ({ warnings } = await finalizeSnapshot({ source, target, store }, flow));
      await store.updateFlow(flowId, { phase: 'done' });
    }
    for (const w of warnings) progress.warn(w);
    progress.phase('done');
    return { flow: flowId, resumed, warnings, interrupted: false };
  } finally {
    if (renew) clearInterval(renew);
    await store.releaseLease(lease, owner).catch(() => {});
    await Promise.allSettled([source.close(), target.close()]);
    await store.close();
  }
}

/** One runner per flow. A runner killed without releasing its lease is waited out (the lease is short). */
async function takeRunnerLease(
  store: { acquireLease(n: string, o: string, u: number): Promise<boolean> },
  lease: string,
  owner: string,
  progress: ProgressSink,
): Promise<void> {
  const giveUp = Date.now() + RUNNER_LEASE_MS * 2;
  let warned = false;
  while (!(await store.acquireLease(lease, owner, Date.now() + RUNNER_LEASE_MS))) {
    if (Date.now() > giveUp) {
      throw new FerryError(
        'another ferry process is running this flow (its lease in the state store is held and renewed)',
        'stop the other `ferry run`, or use another `state.path` or `name`',
      );
    }
    if (!warned) progress.warn('waiting for the lease of an earlier ferry process on this flow to expire');
    warned = true;
    await sleep(1000);
  }
}

export function tablePlans(flow: FlowRecord, jobs: JobRecord[]): TablePlan[] {
  return flow.tables.map((t) => {
    const key = tableKey(t.source);
    const mine = jobs.filter((j) => j.table === key);
    const done = mine.filter((j) => j.status === 'done');
    return {
      table: key,
      target: tableKey(t.target),
      estimatedRows: Math.max(t.estimatedRows, 0),
      estimatedBytes: Math.max(t.estimatedBytes, 0),
      jobs: mine.length,
      doneRows: mine.reduce((n, j) => n + j.rows, 0),
      doneBytes: mine.reduce((n, j) => n + j.bytes, 0),
      doneJobs: done.length,
    };
  });
}
