/**
 * The local composition root behind `ferry run`: one process wires the PostgreSQL adapters, the SQLite state store
 * and an in-memory queue to the core, and runs the flow from wherever it stands:
 *
 *   plan → (snapshot+cdc: publication and slot, start position recorded) → copy ranges → finalize → stream
 *
 * Killed at any point (even SIGKILL) and run again, it resumes: the plan and jobs are in the state store, each
 * range's cursor is committed with its rows on the target, and the stream restarts from its checkpoint.
 */
import { hostname } from 'node:os';
import type { LoadedConfig } from '../../config/load.js';
import { CDC_CHECKPOINT, streamerConnections } from '../../core/cdc/streamer.js';
import { acquireLease, type HeldLease } from '../lease.js';
import { PgRowFilter } from '../../adapters/postgres/row-filter.js';
import { streamFlow } from '../stream-flow.js';
import { FerryError } from '../../core/errors.js';
import type { FlowRecord, JobRecord, TableSchema } from '../../core/model.js';
import type { ChangeSource, StartPoint } from '../../core/ports/change-source.js';
import { keylessNotStreamable } from '../../core/ports/capabilities.js';
import type { ChangeTarget } from '../../core/ports/change-target.js';
import type { ProgressSink } from '../../core/progress.js';
import { finalizeSnapshot } from '../../core/snapshot/finalize.js';
import { planSnapshot } from '../../core/snapshot/plan.js';
import { copyRanges, tablePlans } from './copy-ranges.js';
import { openLocalFlowAdapters } from './pg-adapters.js';
import { configSummary, flowIdOf } from './flow-id.js';
import { openLocalStateStore } from './state.js';

export interface LocalRunOptions {
  config: LoadedConfig;
  progress: ProgressSink;
  signal?: AbortSignal;
  /** Decorate the streaming adapters before streaming starts (the CLI counts changes per table for the dashboard). */
  instrument?: (cdc: { changes: ChangeSource; applier: ChangeTarget }) => { changes: ChangeSource; applier: ChangeTarget };
}

export interface LocalRunResult {
  flow: string;
  resumed: boolean;
  warnings: string[];
  /** True when stopped by the signal before the end (state is kept; run again to resume). */
  interrupted: boolean;
}

const RUNNER_LEASE_MS = 6_000;

export async function runFlow(opts: LocalRunOptions): Promise<LocalRunResult> {
  const { config, progress } = opts;
  const signal = opts.signal ?? new AbortController().signal;
  const flowId = flowIdOf(config);
  const cdc = config.mode === 'snapshot+cdc';
  const store = await openLocalStateStore(config.state.path);
  const owner = `${hostname()}:${process.pid}`;
  const lease = `runner:${flowId}`;
  // PostgreSQL or MongoDB on either side (engines.ts, imported only for MongoDB); PostgreSQL → PostgreSQL as before.
  const adapters = await openLocalFlowAdapters(config, { cdc, warn: (m) => progress.warn(m), heartbeatMs: config.cdc.heartbeatSeconds * 1000 });
  const { source, target, changes, applier } = adapters;
  let held: HeldLease | undefined;
  try {
    // One runner per flow. A runner killed without releasing its lease is waited out (the lease is short).
    held = await acquireLease(store, lease, owner, {
      ttlMs: RUNNER_LEASE_MS,
      waitMs: RUNNER_LEASE_MS * 2,
      onWait: () => progress.warn('waiting for the lease of an earlier ferry process on this flow to expire'),
    });
    if (!held) {
      throw new FerryError(
        'another ferry process is running this flow (its lease in the state store is held and renewed)',
        'stop the other `ferry run`, or use another `state.path` or `name`',
      );
    }

    progress.phase('plan');
    // snapshot+cdc: the publication and the slot are created after every check and before the target is touched.
    let start: StartPoint | undefined;
    const prepareSource = changes
      ? async (tables: TableSchema[]) => {
          // Every change from here on is retained by the slot and will be replayed.
          const resuming = (await store.getCheckpoint(flowId, CDC_CHECKPOINT)) !== undefined;
          start = await changes.prepare(flowId, tables, { resuming });
          if (!resuming) await store.putCheckpoint(flowId, CDC_CHECKPOINT, start.position);
        }
      : undefined;
    const planned = await planSnapshot(
      {
        source,
        target,
        store,
        preflight: async (tables) => {
          await adapters.preflight(tables, flowId);
          await changes?.preflight(flowId, tables);
        },
        prepareSource,
      },
      {
        flow: flowId,
        selection: { include: config.include, exclude: config.exclude, rename: config.rename, tables: config.tables, objects: { roles: config.roles, owner: config.schema.owner } },
        rowsPerRange: config.rowsPerRange,
        truncate: config.target.onExistingRows === 'truncate',
        summary: configSummary(config),
      },
    );
    let flow = planned.flow;
    progress.planned(tablePlans(flow, planned.jobs));

    if (changes && applier) {
      // Read the copy under the slot's consistent snapshot when there is one; without it (a resumed flow, or a
      // source that has none) a keyless table's copy cannot meet the stream exactly, unless its replay converges.
      const handle = start?.snapshot;
      if (handle != null && source.capabilities.consistentRead && source.useSnapshot) source.useSnapshot(handle);
      else if (flow.phase === 'snapshot') assertKeylessResumable(flow, planned.jobs, { source: changes.capabilities, target: applier.capabilities });
    }

    if (flow.phase === 'snapshot') {
      progress.phase('snapshot');
      await copyRanges({ source, target, store, progress }, flow, planned.jobs, { config, owner, signal });
      if (signal.aborted) return { flow: flowId, resumed: planned.resumed, warnings: [], interrupted: true };
      flow = { ...flow, phase: 'finalizing' };
    }
    source.useSnapshot?.(undefined);
    await changes?.releaseSnapshot();

    let warnings: string[] = [];
    if (flow.phase === 'finalizing') {
      progress.phase('finalize');
      ({ warnings } = await finalizeSnapshot({ source, target, store }, flow));
      for (const w of warnings) progress.warn(w);
      flow = { ...flow, phase: cdc ? 'streaming' : 'done' };
      await store.updateFlow(flowId, { phase: flow.phase });
    }

    if (changes && applier && ['streaming', 'stopping', 'stopped'].includes(flow.phase)) {
      const cdcParts = opts.instrument ? opts.instrument({ changes, applier }) : { changes, applier };
      const drained = await streamFlow({ ...cdcParts, store, progress, rowFilter: new PgRowFilter(config.source) }, flow, config, signal);
      // Cutover: inserts on the source moved its sequences while streaming; the target's must follow.
      if (drained) await finalizeSnapshot({ source, target, store }, flow);
      return { flow: flowId, resumed: planned.resumed, warnings, interrupted: !drained };
    }
    progress.phase('done');
    return { flow: flowId, resumed: planned.resumed, warnings, interrupted: false };
  } finally {
    await held?.release();
    await Promise.allSettled([source.close(), target.close(), changes?.close(), applier?.close()]);
    await store.close();
  }
}

/**
 * A keyless table has no key to make replay idempotent: its copy must be read exactly at the slot's start, under the
 * exported snapshot, which died with the process that created it. Its unfinished copy cannot be resumed exactly.
 */
function assertKeylessResumable(flow: FlowRecord, jobs: JobRecord[], caps: Parameters<typeof keylessNotStreamable>[1]): void {
  const keyless = new Set(keylessNotStreamable(flow.tables, caps, false));
  const stuck = [...new Set(jobs.filter((j) => keyless.has(j.table) && j.status !== 'done').map((j) => j.table))];
  if (stuck.length > 0) {
    throw new FerryError(
      `the copy of ${stuck.join(', ')} (no primary key) was interrupted; with changes streaming it cannot be resumed without duplicating rows`,
      'start the flow over: `ferry reset <config> --yes` (it drops the slot, the publication, `_ferry` and the local state), then `ferry run` again with `target.onExistingRows: truncate` (the target tables hold a partial copy); or give the table a primary key',
    );
  }
}
