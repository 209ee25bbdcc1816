import { existsSync } from 'node:fs';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { FerryError } from '../core/errors.js';
import type { FlowRecord } from '../core/model.js';
import type { StateStore } from '../core/ports/state-store.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { openLocalStateStore } from '../runtime/local/state.js';

export interface FlowContext {
  config: LoadedConfig;
  store: StateStore;
  flow: FlowRecord;
}

/** Load the config and the flow it names from the local state store, for commands that act on an existing flow. */
export async function withFlow<T>(path: string, fn: (ctx: FlowContext) => Promise<T>): Promise<T> {
  const config = await loadConfigFile(path);
  if (!existsSync(config.state.path)) {
    throw new FerryError(`no state at ${config.state.path}: this flow has not run yet`, `start it with \`ferry run ${path}\``);
  }
  const store = await openLocalStateStore(config.state.path);
  try {
    const id = flowIdOf(config);
    const flow = await store.getFlow(id);
    if (!flow) throw new FerryError(`flow ${id} is not in ${config.state.path}`, `start it with \`ferry run ${path}\``);
    return await fn({ config, store, flow });
  } finally {
    await store.close();
  }
}
