/**
 * Streaming one flow until stopped: shared by `ferry run` (after its snapshot) and the Fargate streamer. Drains and
 * marks the flow `stopped` when `ferry stop` asked for it (phase `stopping`). A lost source or target connection is
 * retried with backoff by the supervisor (supervise-stream.ts); each attempt resumes from the committed position on
 * fresh connections. Only a fatal error (dropped slot, bad config, permanent permission error) ends it.
 */
import type { LoadedConfig } from '../config/load.js';
import { CDC_LIVE, runStreamer, type LiveStatus } from '../core/cdc/streamer.js';
import { controlledChangeTarget, type RowFilter } from '../core/cdc/controlled-target.js';
import { TokenBucket } from '../core/throttle.js';
import { governHeap } from './heap-governor.js';
import { superviseStream } from './supervise-stream.js';
import type { StreamHooks } from '../core/cdc/stream-hooks.js';
import type { FlowRecord } from '../core/model.js';
import type { ChangeSource } from '../core/ports/change-source.js';
import type { ChangeTarget } from '../core/ports/change-target.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { ProgressSink } from '../core/progress.js';

export interface StreamFlowDeps {
  changes: ChangeSource;
  applier: ChangeTarget;
  store: StateStore;
  progress: ProgressSink;
  /** Schema, partition and table-set evolution (see stream-hooks.ts). */
  hooks?: StreamHooks;
  /** Evaluates row filters the publication does not apply (config `tables.<t>.where`); closed when streaming ends. */
  rowFilter?: RowFilter;
}

/**
 * What the streamer may hold in memory, whatever the size of a transaction: `applyChunkBytes` of row values per
 * target call, up to `maxBacklogBytes` of them waiting for the target before the source is paused (backpressure,
 * nothing is dropped). Small enough that a 1 GB transaction streams through in about 150 MB of RSS, large enough
 * that the source's decoding overlaps the target's apply (two chunks in flight). A large transaction held while
 * more than `cdc.maxStreamedTransactions` are in progress keeps the 64 MiB it had before these were lowered.
 */
export const STREAM_MEMORY = { applyChunkBytes: 2 << 20, maxBacklogBytes: 4 << 20, maxHeldBytes: 64 << 20 } as const;

/** Returns true when it drained on a stop request, false when the signal stopped it. */
export async function streamFlow(deps: StreamFlowDeps, flow: FlowRecord, config: LoadedConfig, signal: AbortSignal): Promise<boolean> {
  const { changes, store, progress } = deps;
  // Column and row controls, and the apply limit, in front of the target (core/cdc/controlled-target.ts).
  const applyRate = config.limits?.applyChangesPerSecond;
  const applier = controlledChangeTarget(deps.applier, flow.tables, {
    throttle: applyRate ? new TokenBucket(applyRate) : undefined,
    filter: deps.rowFilter,
  });
  // A pending stop request (`stopping`) is kept: the streamer drains at once. Only a finished stop restarts.
  if (flow.phase === 'stopped') await store.updateFlow(flow.id, { phase: 'streaming' });
  progress.phase('streaming');
  let drained = false;
  // The heap near what is live (heap-governor.ts): old generation 1.3× live between collections, a backstop at 64 MB.
  const ungovern = governHeap({ softLimitMb: 64, growingPercent: 30, intervalMs: 100 });
  // What `ferry status` shows from another process: honest lag, reconnects and the last warning.
  const live: LiveStatus = { at: 0, lagMs: 0, position: '', reconnects: 0 };
  let written = 0;
  const putLive = (force = false) => {
    const now = Date.now();
    if (!force && now - written < 2000) return;
    written = now;
    live.at = now;
    void store.putCheckpoint(flow.id, CDC_LIVE, { ...live }).catch(() => {});
  };
  const warn = (message: string) => {
    progress.warn(message);
    live.warning = { at: Date.now(), message };
    putLive(true);
  };
  // Schema, partition and new-table hooks of the source (PostgreSQL: cdc/stream-hooks.ts) unless the caller gave
  // some; tables they add or change join the flow record, so `stop`, `verify` and a restart know them.
  const polling = new AbortController();
  const onAbort = () => polling.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let known = flow.tables;
  const parts = deps.hooks
    ? undefined
    : await changes.streamHooks?.(
        flow.id,
        flow.tables,
        { include: config.include, exclude: config.exclude, rename: config.rename, tables: config.tables },
        {
          warn,
          signal: polling.signal,
          onTables: (changed) => {
            const byKey = new Map(known.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
            for (const t of changed) byKey.set(`${t.source.schema}.${t.source.name}`, t);
            known = [...byKey.values()];
            void store.updateFlow(flow.id, { tables: known }).catch((err) => warn(`recording the flow's tables failed: ${String(err)}`));
          },
        },
      );
  const hooks = deps.hooks ?? parts?.hooks;
  try {
  const attempt = () =>
    runStreamer(
      { source: changes, target: applier, store, hooks },
      {
        flow: flow.id,
        tables: flow.tables,
        batchMs: config.cdc.batchMs,
        commitChanges: config.cdc.commitChanges,
        consistency: config.cdc.consistency,
        lanes: config.cdc.lanes,
        maxStreams: config.cdc.maxStreamedTransactions,
        ...STREAM_MEMORY,
        signal,
        drainTo: async () => {
          if ((await store.getFlow(flow.id))?.phase !== 'stopping') return undefined;
          drained = true;
          return changes.currentPosition();
        },
        onApplied: (i) =>
          progress.streamed?.({
            changes: i.changes,
            transactions: i.transactions,
            lagMs: Math.max(0, i.appliedAt - i.sourceTime),
            position: String(i.position),
          }),
        onLag: (lagMs, position) => {
          progress.streamed?.({ changes: 0, transactions: 0, lagMs, position: String(position) });
          live.lagMs = lagMs;
          live.position = String(position);
          putLive();
        },
        warn,
      },
    );
  await superviseStream(attempt, {
    signal,
    warn,
    onRetry: () => {
      live.reconnects++;
      putLive(true);
    },
  });
  } finally {
    ungovern();
    polling.abort();
    signal.removeEventListener('abort', onAbort);
    await parts?.close();
    await deps.rowFilter?.close().catch(() => {});
  }
  if (drained) {
    await store.updateFlow(flow.id, { phase: 'stopped' });
    progress.phase('stopped');
  }
  return drained;
}
