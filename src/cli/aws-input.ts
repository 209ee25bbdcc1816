/**
 * The Step Functions execution input made from a ferry.yaml: the config as written (placeholders kept: the
 * Lambdas interpolate them), without what only makes sense locally. On AWS the endpoints are the deployment's
 * secrets (SourceUrl, TargetUrl), so `source`/`target` are replaced by placeholders that name them.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { parseConfig } from '../config/load.js';

export interface ExecutionInput {
  input: Record<string, unknown>;
  notes: string[];
}

export function executionInput(raw: unknown): ExecutionInput {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('the config must be a mapping of fields');
  const input: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  const notes: string[] = [];
  // Locally a flow id can be derived from the endpoints; on AWS the CLI never sees the real ones (they are secrets).
  if (typeof input.name !== 'string') {
    throw new ConfigError('name: on AWS a flow needs a `name` (e.g. `name: shop-to-new`)', 'add `name:` to the config; `ferry aws status` finds the flow by it');
  }
  for (const side of ['source', 'target'] as const) {
    const given = input[side] as { onExistingRows?: string } | undefined;
    if (given) notes.push(`${side}: on AWS the endpoint is the deployment's secret ${side === 'source' ? 'SourceUrl' : 'TargetUrl'}`);
    input[side] = {
      url: side === 'source' ? '${FERRY_SOURCE_URL}' : '${FERRY_TARGET_URL}',
      ...(given?.onExistingRows ? { onExistingRows: given.onExistingRows } : {}),
    };
  }
  if ('state' in input) {
    delete input.state;
    notes.push('state: on AWS the state store is the deployment\'s DynamoDB table');
  }
  // Validate the shape now (with dummy endpoints) so a typo fails here, not in the first Lambda.
  parseConfig(input, { FERRY_SOURCE_URL: 'postgres://x@h/d', FERRY_TARGET_URL: 'postgres://x@h/d' }, 'config');
  return { input, notes };
}

export async function executionInputFromFile(path: string): Promise<ExecutionInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  return executionInput(parseYaml(text));
}
