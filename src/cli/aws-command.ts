/**
 * `ferry aws start <config>`: start the deployed workflow with the config as input and follow it to its end.
 * `ferry aws status <config>`: the flow's state from DynamoDB and the workflow's recent executions.
 * `ferry aws stop|verify|cleanup <config>`: cutover and teardown against the deployed state (aws-cutover.ts).
 * `ferry aws ui <config>`: the live dashboard, read from the DynamoDB state (needs only the state table).
 * The state machine and table come from flags, the environment, or `.sst/outputs.json` written by `sst deploy`.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type LoadedConfig } from '../config/load.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbStateStore } from '../adapters/dynamodb/dynamodb-state-store.js';
import { CDC_CHECKPOINT, CDC_LAG } from '../core/cdc/streamer.js';
import { FerryError } from '../core/errors.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { awsConfig } from '../runtime/aws/context.js';
import { executionInputFromFile } from './aws-input.js';
import { awsCleanup, awsStop, awsVerify } from './aws-cutover.js';
import type { UiFlags } from './main.js';
import { serveStoredFlow } from '../ui/serve-flow.js';

interface Deployment {
  stateMachineArn: string;
  stateTable: string;
  sourceSecret?: string;
  targetSecret?: string;
}

function outputs(): Record<string, unknown> {
  const path = '.sst/outputs.json';
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
}

export interface AwsFlags {
  stateMachine?: string;
  stateTable?: string;
  /** `start`: follow the execution to its end. */
  follow: boolean;
  /** `ui`: where the dashboard listens. */
  ui?: UiFlags;
}

function deployment(flags: AwsFlags, needs: { stateMachine: boolean }): Deployment {
  const out = outputs();
  const find = (re: RegExp) => Object.entries(out).find(([k, v]) => re.test(k) && typeof v === 'string')?.[1] as string | undefined;
  const stateMachineArn = flags.stateMachine ?? process.env.FERRY_STATE_MACHINE_ARN ?? find(/state.?machine/i) ?? (needs.stateMachine ? undefined : '');
  const stateTable = flags.stateTable ?? process.env.FERRY_STATE_TABLE ?? find(/state.?table|ferrystate/i);
  if (stateMachineArn === undefined || !stateTable) {
    throw new FerryError(
      'cannot find the deployed state machine and state table',
      'run `npx sst deploy` in this folder (it writes .sst/outputs.json), or pass --state-machine ARN --state-table NAME (or FERRY_STATE_MACHINE_ARN, FERRY_STATE_TABLE)',
    );
  }
  return { stateMachineArn, stateTable, sourceSecret: find(/^sourceUrlSecret$/i), targetSecret: find(/^targetUrlSecret$/i) };
}

/**
 * The config with real endpoints, for the commands that reach the databases from this machine: the file's own
 * `source`/`target` (interpolated from this shell's environment), or the deployment's secrets when it has none.
 */
async function endpointsConfig(path: string, input: Record<string, unknown>, dep: Deployment): Promise<LoadedConfig> {
  const raw = parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const env: NodeJS.ProcessEnv = { ...process.env };
  const full: Record<string, unknown> = { ...input };
  for (const [side, arn] of [['source', dep.sourceSecret], ['target', dep.targetSecret]] as const) {
    if (raw[side] !== undefined) full[side] = raw[side];
    else if (arn) env[side === 'source' ? 'FERRY_SOURCE_URL' : 'FERRY_TARGET_URL'] = await readSecret(arn);
    else {
      throw new FerryError(
        `${side}: this command connects to the databases from here, and the config has no \`${side}\``,
        `add \`${side}:\` to ${path} (it is not sent to AWS), or deploy again so that .sst/outputs.json names ${side}UrlSecret`,
      );
    }
  }
  return parseConfig(full, env, path);
}

async function readSecret(arn: string): Promise<string> {
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new FerryError(`secret ${arn} has no value`, 'set it with `npx sst secret set` and deploy');
  return out.SecretString;
}

export async function awsCommand(sub: string, path: string, flags: AwsFlags): Promise<number> {
  const { input, notes } = await executionInputFromFile(path);
  const flow = flowIdOf(awsConfig(input, { stateTable: '', sourceUrl: 'postgres://x@h/d', targetUrl: 'postgres://x@h/d' }));
  const dep = deployment(flags, { stateMachine: sub !== 'ui' });
  const sfn = new SFNClient({});
  const store = new DynamoDbStateStore({ client: new DynamoDBClient({}), tableName: dep.stateTable });
  if (sub === 'ui') return serveUntilInterrupted(store, flow, input, flags.ui!);
  if (sub === 'status') return printStatus(sfn, store, dep, flow);
  if (sub === 'stop') {
    await awsStop(store, flow);
    return (await awsVerify(store, await endpointsConfig(path, input, dep), flow)).ok ? 0 : 1;
  }
  if (sub === 'verify') return (await awsVerify(store, await endpointsConfig(path, input, dep), flow)).ok ? 0 : 1;
  if (sub === 'cleanup') {
    await awsCleanup(store, await endpointsConfig(path, input, dep), flow);
    return 0;
  }

  for (const n of notes) process.stderr.write(`note: ${n}\n`);
  const started = await sfn.send(
    new StartExecutionCommand({ stateMachineArn: dep.stateMachineArn, name: `${flow}-${Date.now()}`.slice(0, 80), input: JSON.stringify(input) }),
  );
  process.stderr.write(`started ${started.executionArn}\n`);
  if (!flags.follow) return 0;
  let last = '';
  let executionArn = started.executionArn;
  for (;;) {
    const exec = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    const counts = Object.values(await store.countJobs(flow).catch(() => ({})));
    const done = counts.reduce((n, c) => n + c.done, 0);
    const total = counts.reduce((n, c) => n + c.total, 0);
    const rows = counts.reduce((n, c) => n + c.rows, 0);
    const line = `${exec.status}: ${done}/${total} ranges, ${rows} rows`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (exec.status === 'SUCCEEDED') {
      // A long snapshot's poll loop continues in a new execution (ContinueAsNew): follow it.
      const next = (JSON.parse(exec.output ?? '{}') as { executionArn?: string }).executionArn;
      if (next) {
        process.stderr.write(`continued as ${next}\n`);
        executionArn = next;
        continue;
      }
      process.stdout.write(`${exec.output ?? ''}\n`);
      return 0;
    }
    if (exec.status !== 'RUNNING' && exec.status !== 'PENDING_REDRIVE') {
      process.stderr.write(`ferry: the migration ${exec.status?.toLowerCase()}: ${exec.error ?? ''} ${exec.cause ?? ''}\n`);
      return 1;
    }
    await sleep(5000);
  }
}

async function printStatus(sfn: SFNClient, store: DynamoDbStateStore, dep: Deployment, flow: string): Promise<number> {
  const record = await store.getFlow(flow);
  const lines = [`flow ${flow}: ${record?.phase ?? 'not started'}${record?.error ? ` (${record.error})` : ''}`];
  for (const [table, c] of Object.entries(await store.countJobs(flow))) {
    lines.push(`  ${table.padEnd(40)} ${c.done}/${c.total} ranges  ${c.rows} rows${c.failed ? `  ${c.failed} FAILED` : ''}`);
  }
  const position = await store.getCheckpoint(flow, CDC_CHECKPOINT);
  const lag = (await store.getCheckpoint(flow, CDC_LAG)) as { sourceTime: number; appliedAt: number } | undefined;
  if (position) lines.push(`  streaming: applied up to ${String(position)}${lag ? `, last lag ${((lag.appliedAt - lag.sourceTime) / 1000).toFixed(1)} s at ${new Date(lag.appliedAt).toISOString()}` : ''}`);
  const execs = await sfn.send(new ListExecutionsCommand({ stateMachineArn: dep.stateMachineArn, maxResults: 5 }));
  for (const e of execs.executions ?? []) {
    if (e.name?.startsWith(flow)) lines.push(`  execution ${e.name}: ${e.status} (started ${e.startDate?.toISOString()})`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** The dashboard of a deployed flow until Ctrl-C; it only reads the state table. */
async function serveUntilInterrupted(store: DynamoDbStateStore, flow: string, input: Record<string, unknown>, ui: UiFlags): Promise<number> {
  const cdc = input.mode === 'snapshot+cdc';
  const served = await serveStoredFlow(store, flow, cdc, { ...ui, keepAlive: true });
  process.stderr.write(`ferry: dashboard at ${served.dashboard.openUrl} for flow ${flow} (AWS, read from DynamoDB; Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await served.close();
  await store.close();
  return 0;
}
