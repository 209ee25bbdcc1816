#!/usr/bin/env node
/**
 * Type-check sst.config.ts and infra/*.ts against SST's real component types, without AWS credentials.
 *
 * Those types are not in the `sst` npm package: `sst install` writes them (with pulumi's AWS provider SDK) to
 * .sst/platform, about 300 MB and 40 s the first time, so it runs only when that folder is missing (or was written
 * by another SST version than the one installed). The stage name only labels the local workspace; nothing is
 * deployed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// SST's CLI would otherwise try to download pulumi and bun, check dependencies and send telemetry.
const env = {
  ...process.env,
  SST_STAGE: process.env.SST_STAGE ?? 'ci',
  SST_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  SST_SKIP_DEPENDENCY_CHECK: '1',
  SST_NO_BUN: '1',
};

function run(command, args) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, env, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    process.stderr.write(`typecheck-infra: \`${command} ${args.join(' ')}\` failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
  return ((Date.now() - started) / 1000).toFixed(1);
}

const platform = join(root, '.sst', 'platform');
const installed = JSON.parse(readFileSync(join(root, 'node_modules', 'sst', 'package.json'), 'utf8')).version;
const versionFile = join(platform, 'version');
const platformVersion = existsSync(versionFile) ? readFileSync(versionFile, 'utf8').trim() : undefined;
// config.d.ts is the entry point sst.config.ts references; a platform from another SST version has other types.
if (!existsSync(join(platform, 'config.d.ts')) || platformVersion !== installed) {
  const why = platformVersion && platformVersion !== installed ? `is for SST ${platformVersion}, not ${installed}` : 'is missing';
  process.stdout.write(`typecheck-infra: .sst/platform ${why}, running \`sst install\` (about 40 s)\n`);
  const seconds = run('npx', ['--no-install', 'sst', 'install']);
  process.stdout.write(`typecheck-infra: sst install took ${seconds} s\n`);
}

const seconds = run('npx', ['--no-install', 'tsc', '-p', join('infra', 'tsconfig.json')]);
process.stdout.write(`typecheck-infra: sst.config.ts and infra/ type-check (${seconds} s)\n`);
