import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { configSchema, type FerryConfig } from './schema.js';

export interface LoadedConfig extends FerryConfig {
  workers: number;
}

/** Read, interpolate and validate a config file (YAML or JSON by content). */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  return parseConfig(raw, env, path);
}

/** Validate an already-parsed config object (the Step Functions input, a test's literal). */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv = process.env, origin = 'config'): LoadedConfig {
  const interpolated = interpolate(raw, env, []);
  const result = configSchema.safeParse(interpolated);
  if (!result.success) throw new ConfigError(`${origin} is invalid:\n${formatIssues(result.error.issues)}`);
  return { ...result.data, workers: result.data.workers ?? Math.max(1, cpus().length) };
}

/** Replace `${NAME}` in every string with the environment value; an unset variable is an error naming the field. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: (string | number)[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) {
        throw new ConfigError(
          `${fieldPath(path)}: environment variable ${name} is not set`,
          `export ${name}=... before running ferry`,
        );
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, [...path, k])]));
  }
  return value;
}

function fieldPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

function formatIssues(issues: z.core.$ZodIssue[]): string {
  return issues
    .map((i) => {
      if (i.code === 'unrecognized_keys') {
        return `  - ${fieldPath(i.path)}: unknown field ${i.keys.map((k) => `\`${k}\``).join(', ')}`;
      }
      return `  - ${fieldPath(i.path)}: ${i.message}`;
    })
    .join('\n');
}
