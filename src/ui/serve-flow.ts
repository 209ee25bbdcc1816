/**
 * Wire a dashboard to one flow of a config: the local state store (the same file `ferry status` reads) and the
 * source, for the slot's lag and retained WAL. Used by `ferry ui`, `ferry run --ui` and the demo; `ferry aws ui`
 * serves a flow of the AWS runtime from DynamoDB the same way (serveStoredFlow).
 */
import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { SqliteStateStore } from '../adapters/sqlite/sqlite-state-store.js';
import type { LoadedConfig } from '../config/load.js';
import type { LagInfo } from '../core/ports/change-source.js';
import type { StateStore } from '../core/ports/state-store.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { Sampler } from './sampler.js';
import { engineOf } from '../config/schema.js';
import { MongoLagReader, type ChangeStreamLag } from './mongo-stream-lag.js';
import { readSlotSample } from './slot-checkpoint.js';
import { startDashboard, type Dashboard, type DashboardOptions } from './server.js';

export interface ServedFlow {
  dashboard: Dashboard;
  sampler: Sampler;
  close(): Promise<void>;
}

export async function serveFlow(config: LoadedConfig, opts: DashboardOptions): Promise<ServedFlow> {
  const flow = flowIdOf(config);
  const store = new SqliteStateStore(config.state.path);
  const cdc = config.mode === 'snapshot+cdc';
  const mongo = engineOf(config.source) === 'mongodb';
  // A MongoDB source has no slot: its change stream's lag is read from the checkpoint and the source's oplog.
  const source = cdc && !mongo ? new PgChangeSource(config.source) : undefined;
  const reader = cdc && mongo ? new MongoLagReader(config.source) : undefined;
  let stream: { at: number; value: Promise<ChangeStreamLag | undefined> } | undefined;
  const streamLag = reader
    ? (position: unknown) => {
        if (!stream || Date.now() - stream.at >= 2000) stream = { at: Date.now(), value: reader.lag(position).catch(() => undefined) };
        return stream.value;
      }
    : undefined;
  // The slot is read at most every 2 s: it is a catalog query on the production source.
  let slot: { at: number; value: Promise<LagInfo | undefined> } | undefined;
  const slotLag = () => {
    if (!source) return Promise.resolve(undefined);
    if (!slot || Date.now() - slot.at >= 2000) slot = { at: Date.now(), value: source.lag(flow).catch(() => undefined) };
    return slot.value;
  };
  return serveStore({ store, flow, cdc, slotLag, streamLag, close: async () => void (await Promise.allSettled([source?.close(), reader?.close(), store.close()])) }, opts);
}

/**
 * A flow of the AWS runtime (`ferry aws ui`): everything from its DynamoDB state, the slot as the Fargate streamer
 * last sampled it (the source may be out of reach from here). The store is the caller's and stays open.
 */
export function serveStoredFlow(store: StateStore, flow: string, cdc: boolean, opts: DashboardOptions): Promise<ServedFlow> {
  return serveStore({ store, flow, cdc, slotLag: () => readSlotSample(store, flow), close: async () => {} }, opts);
}

async function serveStore(
  s: {
    store: StateStore;
    flow: string;
    cdc: boolean;
    slotLag: () => Promise<LagInfo | undefined>;
    streamLag?: (position: unknown) => Promise<ChangeStreamLag | undefined>;
    close: () => Promise<void>;
  },
  opts: DashboardOptions,
): Promise<ServedFlow> {
  const sampler = new Sampler({ store: s.store, flow: s.flow, cdc: s.cdc, slotLag: s.slotLag, streamLag: s.streamLag }).start();
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard(sampler, opts);
  } catch (err) {
    sampler.stop();
    await s.close();
    throw err;
  }
  return {
    dashboard,
    sampler,
    async close() {
      sampler.stop();
      await dashboard.close();
      await s.close();
    },
  };
}
