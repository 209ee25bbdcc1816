import type { LoadedConfig } from '../../config/load.js';
import { describeEndpoint } from '../../config/endpoint.js';
import type { EndpointConfig } from '../../config/schema.js';
import type { Json } from '../../core/model.js';
import { defaultFlowId } from '../../core/snapshot/plan.js';

/** Where an endpoint is, without credentials: identifies a migration without leaking secrets. */
function locationOf(e: EndpointConfig): string {
  return describeEndpoint(e, { withUser: false, unparseable: 'unparseable' });
}

export function flowIdOf(config: LoadedConfig): string {
  return config.name ?? defaultFlowId([locationOf(config.source), locationOf(config.target)]);
}

/** What is stored with the flow: the config's shape, never a password or a URL that could hold one. */
export function configSummary(config: LoadedConfig): Json {
  return {
    source: locationOf(config.source),
    target: locationOf(config.target),
    include: config.include,
    exclude: config.exclude,
    rename: config.rename,
    mode: config.mode,
    rowsPerRange: config.rowsPerRange,
    batchRows: config.batchRows,
    maxAttempts: config.maxAttempts,
    jobTimeBudgetSeconds: config.jobTimeBudgetSeconds,
    cdc: config.cdc,
    // Read back by the AWS copy functions (the snapshot limits) and shown by status; plain JSON.
    ...(Object.keys(config.limits ?? {}).length ? { limits: config.limits as Json } : {}),
    ...(Object.keys(config.tables ?? {}).length ? { tables: config.tables as Json } : {}),
  };
}
