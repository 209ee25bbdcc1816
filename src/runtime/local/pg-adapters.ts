/**
 * The PostgreSQL → PostgreSQL adapters of a flow, on their own: `ferry run` between two PostgreSQL servers imports
 * only this, not engines.ts, whose MongoDB adapters load the mongodb driver and bson (about 10 MB of RSS, two
 * 17 MB buffers reserved) that such a flow never uses.
 */
import { PgChangeSource } from '../../adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../../adapters/postgres/cdc/change-target.js';
import { checkSourceAndTarget } from '../../adapters/postgres/preflight-safety.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../../config/load.js';
import { engineOf } from '../../config/schema.js';
import { streamerConnections } from '../../core/cdc/streamer.js';
import type { FlowAdapters } from './engines.js';

/** Both endpoints are PostgreSQL. */
export function pgToPg(config: LoadedConfig): boolean {
  return engineOf(config.source) === 'postgres' && engineOf(config.target) === 'postgres';
}

export function openPgFlowAdapters(config: LoadedConfig, opts: { cdc: boolean; warn: (m: string) => void; heartbeatMs: number }): FlowAdapters {
  return {
    source: new PgSnapshotSource(config.source, { connections: config.workers + 1 }),
    target: new PgSnapshotTarget(config.target, { connections: config.workers + 1 }),
    changes: opts.cdc ? new PgChangeSource(config.source, { warn: opts.warn, heartbeatMs: opts.heartbeatMs }) : undefined,
    applier: opts.cdc ? new PgChangeTarget(config.target, { connections: streamerConnections(config.cdc) }) : undefined,
    preflight: (tables, flow) => checkSourceAndTarget(config.source, config.target, tables, { cdc: opts.cdc, flow }),
  };
}

/** The flow's adapters: PostgreSQL → PostgreSQL from here, anything with MongoDB from engines.ts (loaded then). */
export async function openLocalFlowAdapters(config: LoadedConfig, opts: { cdc: boolean; warn: (m: string) => void; heartbeatMs: number }): Promise<FlowAdapters> {
  if (pgToPg(config)) return openPgFlowAdapters(config, opts);
  return (await import('./engines.js')).openFlowAdapters(config, opts);
}
