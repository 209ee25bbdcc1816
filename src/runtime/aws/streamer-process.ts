/**
 * The Fargate streamer: one per flow, enforced by a lease in DynamoDB (conditional writes with an expiry). A second
 * task waits for the lease and exits cleanly if it does not come free; a task whose lease was taken (it stalled
 * past the expiry) stops at once. SIGTERM (ECS stop) commits, checkpoints and exits within the stop timeout.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { PgChangeSource } from '../../adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../../adapters/postgres/cdc/change-target.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../../config/load.js';
import { finalizeSnapshot } from '../../core/snapshot/finalize.js';
import type { ProgressSink } from '../../core/progress.js';
import { acquireLease } from '../lease.js';
import { streamFlow } from '../stream-flow.js';
import type { AwsContext } from './context.js';

export type StreamerExit = 'drained' | 'stopped' | 'standby' | 'lease-lost';

export interface StreamerProcessOptions {
  flow: string;
  config: LoadedConfig;
  signal: AbortSignal;
  progress: ProgressSink;
  leaseTtlMs?: number;
  /** How long a second streamer waits for the lease before exiting. */
  leaseWaitMs?: number;
}

export async function runStreamerProcess(ctx: AwsContext, opts: StreamerProcessOptions): Promise<StreamerExit> {
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const lease = await acquireLease(ctx.store, `streamer:${opts.flow}`, owner, {
    ttlMs: opts.leaseTtlMs ?? 30_000,
    waitMs: opts.leaseWaitMs ?? 60_000,
    onWait: () => opts.progress.warn(`another streamer holds flow ${opts.flow}; waiting for its lease`),
  });
  if (!lease) return 'standby';
  const stop = AbortSignal.any([opts.signal, lease.lost]);
  const changes = new PgChangeSource(opts.config.source, { warn: (m) => opts.progress.warn(m), heartbeatMs: opts.config.cdc.heartbeatSeconds * 1000 });
  const applier = new PgChangeTarget(opts.config.target, { connections: 2 });
  try {
    const flow = await ctx.store.getFlow(opts.flow);
    if (!flow) throw new Error(`flow ${opts.flow} is not in the state store`);
    // The publication and slot exist since Plan; this only confirms them (and recreates a dropped publication).
    await changes.prepare(flow.id, flow.tables, { resuming: true });
    await changes.releaseSnapshot();
    const drained = await streamFlow({ changes, applier, store: ctx.store, progress: opts.progress }, flow, opts.config, stop);
    if (drained) {
      // Cutover: inserts on the source moved its sequences while streaming; the target's must follow.
      const source = new PgSnapshotSource(opts.config.source, { connections: 1 });
      const target = new PgSnapshotTarget(opts.config.target, { connections: 1 });
      try {
        await finalizeSnapshot({ source, target, store: ctx.store }, flow);
      } finally {
        await Promise.allSettled([source.close(), target.close()]);
      }
      return 'drained';
    }
    return lease.lost.aborted ? 'lease-lost' : 'stopped';
  } finally {
    await Promise.allSettled([changes.close(), applier.close()]);
    await lease.release();
  }
}
