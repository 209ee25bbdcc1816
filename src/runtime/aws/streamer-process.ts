/**
 * The Fargate streamer: one per flow, enforced by a lease in DynamoDB (conditional writes with an expiry). A second
 * task is a hot standby: it waits for the lease for as long as the flow streams, and exits cleanly once the flow is
 * stopped or done. A task whose lease was taken (it stalled past the expiry) stops at once. SIGTERM (ECS stop)
 * commits, checkpoints and exits within the stop timeout. A stalled stream (stream-health.ts) ends with `stalled`,
 * which the entry point turns into a non-zero exit, so the supervisor (supervisor.ts) starts a fresh task.
 *
 * Only the flow id arrives from outside: the config is the one Plan stored in the state store.
 */
import { PgRowFilter } from '../../adapters/postgres/row-filter.js';
import { openFlowAdapters, hasMongoEndpoint, type FlowAdapters } from '../local/engines.js';
import type { ChangeSource } from '../../core/ports/change-source.js';
import type { ChangeTarget } from '../../core/ports/change-target.js';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgChangeSource } from '../../adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../../adapters/postgres/cdc/change-target.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../../config/load.js';
import { CDC_CHECKPOINT, CDC_LAG, streamerConnections } from '../../core/cdc/streamer.js';
import { finalizeSnapshot } from '../../core/snapshot/finalize.js';
import type { ProgressSink } from '../../core/progress.js';
import { acquireLease, type HeldLease } from '../lease.js';
import { streamFlow } from '../stream-flow.js';
import { ActivityRecorder } from '../../progress/activity.js';
import { teeProgress } from '../../progress/summary.js';
import { CDC_SLOT } from '../../ui/slot-checkpoint.js';
import { AWS_CONFIG } from './activities.js';
import { awsConfig, type AwsContext } from './context.js';
import { watchStream, type HealthSample } from './stream-health.js';

export type StreamerExit = 'drained' | 'stopped' | 'standby' | 'lease-lost' | 'stalled';

/** Written after a drain re-synced the target's sequences: `ferry aws stop` waits for it. */
export const CUTOVER_CHECKPOINT = 'aws:cutover';

/** Phases in which a flow wants a streamer. */
export const STREAMING_PHASES = ['streaming', 'stopping'] as const;

export interface StreamerProcessOptions {
  flow: string;
  /** The flow's config; read from the state store when absent (production). */
  config?: LoadedConfig;
  signal: AbortSignal;
  progress: ProgressSink;
  leaseTtlMs?: number;
  /** How long a standby waits for the lease before exiting (default: as long as the flow streams). */
  leaseWaitMs?: number;
  health?: { intervalMs: number; stallMs: number };
  /** Each health sample, for metrics (the entry point prints them as embedded metric format). */
  onHealth?: (sample: HealthSample & { stalledForMs: number }) => void;
  /**
   * Called when the stream is found stalled, before the stop is requested. A stall may be a wedged database call that
   * no abort reaches, so the entry point also arms a hard exit here.
   */
  onStall?: (reason: string) => void;
}

export async function runStreamerProcess(ctx: AwsContext, opts: StreamerProcessOptions): Promise<StreamerExit> {
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const lease = await standBy(ctx, opts, owner);
  if (!lease) return opts.signal.aborted ? 'stopped' : 'standby';
  const stalled = new AbortController();
  const stop = AbortSignal.any([opts.signal, lease.lost, stalled.signal]);
  let changes: ChangeSource | undefined;
  let applier: ChangeTarget | undefined;
  let unwatch = () => {};
  let mongoSide: FlowAdapters | undefined;
  let recorder: ActivityRecorder | undefined;
  try {
    const flow = await ctx.store.getFlow(opts.flow);
    if (!flow) throw new Error(`flow ${opts.flow} is not in the state store`);
    // The lease may have come free because the last streamer drained: nothing left to do.
    if (!(STREAMING_PHASES as readonly string[]).includes(flow.phase)) return 'standby';
    const config = opts.config ?? awsConfig(await ctx.store.getCheckpoint(opts.flow, AWS_CONFIG), ctx.settings);
    if (hasMongoEndpoint(config)) {
      // A MongoDB endpoint (additive): the Fargate streamer holds the change stream; its resume token is the position.
      mongoSide = openFlowAdapters(config, { cdc: true, warn: (m) => opts.progress.warn(m), heartbeatMs: config.cdc.heartbeatSeconds * 1000 });
      if (!mongoSide.changes || !mongoSide.applier) throw new Error('the MongoDB flow has no change stream adapters');
      changes = mongoSide.changes;
      applier = mongoSide.applier;
    } else {
      changes = new PgChangeSource(config.source, { warn: (m) => opts.progress.warn(m), heartbeatMs: config.cdc.heartbeatSeconds * 1000 });
      applier = new PgChangeTarget(config.target, { connections: streamerConnections(config.cdc) });
    }
    // What `ferry aws ui` shows from DynamoDB: per-table change counts and warnings (as `ferry run` records them
    // locally), written every few seconds.
    recorder = new ActivityRecorder(ctx.store, opts.flow, 5000).start();
    const counted = recorder.instrument({ changes, applier });
    const source: ChangeSource = changes;
    // The publication and slot exist since Plan; this only confirms them (and recreates a dropped publication).
    await source.prepare(flow.id, flow.tables, { resuming: true });
    await source.releaseSnapshot();
    const health = opts.health ?? { intervalMs: 30_000, stallMs: Math.max(300_000, config.cdc.heartbeatSeconds * 10_000) };
    unwatch = watchStream({
      ...health,
      sample: async () => {
        const lag = (await ctx.store.getCheckpoint(opts.flow, CDC_LAG)) as { sourceTime: number; appliedAt: number } | undefined;
        const slot = await source.lag(opts.flow);
        // The slot as last seen, for the dashboard (it may not reach the source from where it runs).
        if (slot) await ctx.store.putCheckpoint(opts.flow, CDC_SLOT, { ...slot, at: Date.now() }).catch(() => {});
        return {
          lag: slot,
          checkpoint: await ctx.store.getCheckpoint(opts.flow, CDC_CHECKPOINT),
          lagSeconds: lag ? Math.max(0, (Date.now() - lag.sourceTime) / 1000) : undefined,
        };
      },
      onSample: opts.onHealth,
      onStall: (reason) => {
        opts.progress.warn(reason);
        opts.onStall?.(reason);
        stalled.abort(new Error(reason));
      },
    });
    const progress = teeProgress(opts.progress, recorder.sink());
    const drained = await streamFlow(
      { changes: counted.changes, applier: counted.applier, store: ctx.store, progress, rowFilter: new PgRowFilter(config.source) },
      flow,
      config,
      stop,
    );
    unwatch();
    if (drained) {
      // Cutover: inserts on the source moved its sequences while streaming; the target's must follow.
      const snapshotSource = mongoSide ? mongoSide.source : new PgSnapshotSource(config.source, { connections: 1 });
      const target = mongoSide ? mongoSide.target : new PgSnapshotTarget(config.target, { connections: 1 });
      try {
        await finalizeSnapshot({ source: snapshotSource, target, store: ctx.store }, flow);
      } finally {
        await Promise.allSettled([snapshotSource.close(), target.close()]);
      }
      await ctx.store.putCheckpoint(opts.flow, CUTOVER_CHECKPOINT, {
        at: Date.now(),
        position: (await ctx.store.getCheckpoint(opts.flow, CDC_CHECKPOINT)) ?? null,
      });
      return 'drained';
    }
    if (stalled.signal.aborted) return 'stalled';
    return lease.lost.aborted ? 'lease-lost' : 'stopped';
  } finally {
    unwatch();
    await recorder?.stop();
    await Promise.allSettled([changes?.close(), applier?.close(), mongoSide?.source.close(), mongoSide?.target.close()]);
    await lease.release();
  }
}

/** Take the flow's streamer lease, waiting as a standby while another streamer holds it and the flow streams. */
async function standBy(ctx: AwsContext, opts: StreamerProcessOptions, owner: string): Promise<HeldLease | undefined> {
  const ttlMs = opts.leaseTtlMs ?? 30_000;
  const giveUp = Date.now() + (opts.leaseWaitMs ?? Number.POSITIVE_INFINITY);
  let warned = false;
  for (;;) {
    const lease = await acquireLease(ctx.store, `streamer:${opts.flow}`, owner, {
      ttlMs,
      waitMs: Math.min(5000, Math.max(0, giveUp - Date.now())),
      onWait: () => {
        if (!warned) opts.progress.warn(`another streamer holds flow ${opts.flow}; standing by for its lease`);
        warned = true;
      },
    });
    if (lease) return lease;
    if (opts.signal.aborted || Date.now() >= giveUp) return undefined;
    const phase = (await ctx.store.getFlow(opts.flow))?.phase;
    if (!phase || !(STREAMING_PHASES as readonly string[]).includes(phase)) return undefined;
    await sleep(100);
  }
}
