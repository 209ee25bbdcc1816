/**
 * `ferry aws start <config>`: start the deployed workflow with the config as input and follow it to its end.
 * `ferry aws status <config>`: the flow's state from DynamoDB and the workflow's recent executions.
 * The state machine and table come from flags, the environment, or `.sst/outputs.json` written by `sst deploy`.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbStateStore } from '../adapters/dynamodb/dynamodb-state-store.js';
import { CDC_CHECKPOINT, CDC_LAG } from '../core/cdc/streamer.js';
import { FerryError } from '../core/errors.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { awsConfig } from '../runtime/aws/context.js';
import { executionInputFromFile } from './aws-input.js';

interface Deployment {
  stateMachineArn: string;
  stateTable: string;
}

function outputs(): Record<string, unknown> {
  const path = '.sst/outputs.json';
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : {};
}

function deployment(flags: Map<string, string>): Deployment {
  const out = outputs();
  const find = (re: RegExp) => Object.entries(out).find(([k, v]) => re.test(k) && typeof v === 'string')?.[1] as string | undefined;
  const stateMachineArn = flags.get('--state-machine') ?? process.env.FERRY_STATE_MACHINE_ARN ?? find(/state.?machine/i);
  const stateTable = flags.get('--state-table') ?? process.env.FERRY_STATE_TABLE ?? find(/state.?table|ferrystate/i);
  if (!stateMachineArn || !stateTable) {
    throw new FerryError(
      'cannot find the deployed state machine and state table',
      'run `npx sst deploy` in this folder (it writes .sst/outputs.json), or pass --state-machine ARN --state-table NAME (or FERRY_STATE_MACHINE_ARN, FERRY_STATE_TABLE)',
    );
  }
  return { stateMachineArn, stateTable };
}

export async function awsCommand(sub: string | undefined, path: string | undefined, flags: Map<string, string>): Promise<number> {
  if (!path || (sub !== 'start' && sub !== 'status')) {
    throw new FerryError('usage: ferry aws start <config.yaml> | ferry aws status <config.yaml>');
  }
  const { input, notes } = await executionInputFromFile(path);
  const flow = flowIdOf(awsConfig(input, { stateTable: '', sourceUrl: 'postgres://x@h/d', targetUrl: 'postgres://x@h/d' }));
  const dep = deployment(flags);
  const sfn = new SFNClient({});
  const store = new DynamoDbStateStore({ client: new DynamoDBClient({}), tableName: dep.stateTable });
  if (sub === 'status') return printStatus(sfn, store, dep, flow);

  for (const n of notes) process.stderr.write(`note: ${n}\n`);
  const started = await sfn.send(
    new StartExecutionCommand({ stateMachineArn: dep.stateMachineArn, name: `${flow}-${Date.now()}`.slice(0, 80), input: JSON.stringify(input) }),
  );
  process.stderr.write(`started ${started.executionArn}\n`);
  if (flags.has('--no-follow')) return 0;
  let last = '';
  for (;;) {
    const exec = await sfn.send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
    const counts = Object.values(await store.countJobs(flow).catch(() => ({})));
    const done = counts.reduce((n, c) => n + c.done, 0);
    const total = counts.reduce((n, c) => n + c.total, 0);
    const rows = counts.reduce((n, c) => n + c.rows, 0);
    const line = `${exec.status}: ${done}/${total} ranges, ${rows} rows`;
    if (line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (exec.status === 'SUCCEEDED') {
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
  const lines = [`flow ${flow}: ${record?.phase ?? 'not started'}`];
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
