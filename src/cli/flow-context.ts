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
  id: string;
}

/** Load the config and the flow it names from the local state store, for commands that act on an existing flow. */
export async function withFlow<T>(path: string, fn: (ctx: FlowContext) => Promise<T>): Promise<T> {
  return withMaybeFlow(path, ({ flow, ...rest }) => {
    if (!flow) throw new FerryError(`flow ${rest.id} is not in ${rest.config.state.path}`, `start it with \`ferry run ${path}\``);
    return fn({ ...rest, flow });
  });
}

/** The same, also for a flow without a record (a run that failed before its plan was stored). */
export async function withMaybeFlow<T>(path: string, fn: (ctx: Omit<FlowContext, 'flow'> & { flow: FlowRecord | undefined }) => Promise<T>): Promise<T> {
  const config = await loadConfigFile(path);
  if (!existsSync(config.state.path)) {
    throw new FerryError(`no state at ${config.state.path}: this flow has not run yet`, `start it with \`ferry run ${path}\``);
  }
  const store = await openLocalStateStore(config.state.path);
  try {
    const id = flowIdOf(config);
    return await fn({ config, store, flow: await store.getFlow(id), id });
  } finally {
    await store.close();
  }
}
