/**
 * Streaming one flow until stopped: shared by `ferry run` (after its snapshot) and the Fargate streamer. Drains and
 * marks the flow `stopped` when `ferry stop` asked for it (phase `stopping`).
 */
import type { LoadedConfig } from '../config/load.js';
import { runStreamer } from '../core/cdc/streamer.js';
import { governHeap } from './heap-governor.js';
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
}

/** Returns true when it drained on a stop request, false when the signal stopped it. */
export async function streamFlow(deps: StreamFlowDeps, flow: FlowRecord, config: LoadedConfig, signal: AbortSignal): Promise<boolean> {
  const { changes, applier, store, progress } = deps;
  // A pending stop request (`stopping`) is kept: the streamer drains at once. Only a finished stop restarts.
  if (flow.phase === 'stopped') await store.updateFlow(flow.id, { phase: 'streaming' });
  progress.phase('streaming');
  let drained = false;
  const ungovern = governHeap({ softLimitMb: 64, intervalMs: 100 });
  // Schema, partition and new-table hooks (NOTES.md: stream <-> parts); tables they add or change join the flow record.
  const polling = new AbortController();
  const onAbort = () => polling.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let known = flow.tables;
  const parts = await changes.streamHooks?.(
    flow.id,
    flow.tables,
    { include: config.include, exclude: config.exclude, rename: config.rename },
    {
      warn: (m) => progress.warn(m),
      signal: polling.signal,
      onTables: (changed) => {
        const byKey = new Map(known.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
        for (const t of changed) byKey.set(`${t.source.schema}.${t.source.name}`, t);
        known = [...byKey.values()];
        void store.updateFlow(flow.id, { tables: known }).catch((err) => progress.warn(`recording the flow's tables failed: ${String(err)}`));
      },
    },
  );
  try {
  await runStreamer(
    { source: changes, target: applier, store, hooks: parts?.hooks },
    {
      flow: flow.id,
      tables: flow.tables,
      batchMs: config.cdc.batchMs,
      signal,
      onWarn: (m) => progress.warn(m),
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
    },
  );
  } finally {
    ungovern();
    polling.abort();
    signal.removeEventListener('abort', onAbort);
    await parts?.close();
  }
  if (drained) {
    await store.updateFlow(flow.id, { phase: 'stopped' });
    progress.phase('stopped');
  }
  return drained;
}
