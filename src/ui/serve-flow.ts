/**
 * Wire a dashboard to one flow of a config: the local state store (the same file `ferry status` reads) and the
 * source, for the slot's lag and retained WAL. Used by `ferry ui`, `ferry run --ui` and the demo.
 */
import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { SqliteStateStore } from '../adapters/sqlite/sqlite-state-store.js';
import type { LoadedConfig } from '../config/load.js';
import type { LagInfo } from '../core/ports/change-source.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { Sampler } from './sampler.js';
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
  const source = cdc ? new PgChangeSource(config.source) : undefined;
  // The slot is read at most every 2 s: it is a catalog query on the production source.
  let slot: { at: number; value: Promise<LagInfo | undefined> } | undefined;
  const slotLag = () => {
    if (!source) return Promise.resolve(undefined);
    if (!slot || Date.now() - slot.at >= 2000) slot = { at: Date.now(), value: source.lag(flow).catch(() => undefined) };
    return slot.value;
  };
  const sampler = new Sampler({ store, flow, cdc, slotLag }).start();
  let dashboard: Dashboard;
  try {
    dashboard = await startDashboard(sampler, opts);
  } catch (err) {
    sampler.stop();
    await Promise.allSettled([source?.close(), store.close()]);
    throw err;
  }
  return {
    dashboard,
    sampler,
    async close() {
      sampler.stop();
      await dashboard.close();
      await Promise.allSettled([source?.close()]);
      await store.close();
    },
  };
}
