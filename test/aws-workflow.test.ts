/**
 * The AWS code path on 127.0.0.1: the real workflow definition (infra/workflow.asl.json) executed by
 * aws-local-stepfunctions, its Task states bound to the real Lambda handlers (functions/*.ts), range jobs through
 * SQS (fauxqs) to the real copy-range handler invoked the way Lambda's event source mapping does, state in DynamoDB
 * Local, databases in embedded PostgreSQL. Only ECS is out of reach: the StartStreamer state runs the streamer
 * container's own code in this process instead of RunTask.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SQSEvent } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as copyRange } from '../functions/copy-range.js';
import { handler as enqueue } from '../functions/enqueue.js';
import { awsContext } from '../functions/lib/context.js';
import { handler as plan } from '../functions/plan.js';
import { handler as progress } from '../functions/progress.js';
import { handler as status } from '../functions/status.js';
import { handler as recordFailure } from '../functions/record-failure.js';
import { validateHandler } from '../functions/validate.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { silentProgress } from '../src/core/progress.js';
import { verifyFlow } from '../src/core/verify/verify.js';
import { awsConfig } from '../src/runtime/aws/context.js';
import { CopyWorker } from '../src/runtime/aws/copy-batch.js';
import { runStreamerProcess } from '../src/runtime/aws/streamer-process.js';
import { AWS_CONFIG, finalize } from '../src/runtime/aws/activities.js';
import { lambdaContext, PollGate, pollLikeLambda, startAwsLocal, type AwsLocal } from './support/aws-local.js';
import { waitFor } from './support/ferry-cli.js';
import { freshDatabases, query, startPair, type PgPair } from './support/pg-pair.js';

const definition = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'infra', 'workflow.asl.json'), 'utf8'));
const MAX_ATTEMPTS = 2;

let pair: PgPair;
let aws: AwsLocal;
let urls: { sourceUrl: string; targetUrl: string };
const stopPolling = new AbortController();
const gate = new PollGate();
let poller: Promise<void>;
// Every execution of this file is RUNNING only while its machine runs; finished ones release their flow's lease.
const running = new Set<string>();
const validate = validateHandler(() => ({
  executions: { status: async (arn) => (running.has(arn) ? 'RUNNING' : 'SUCCEEDED') },
  limits: { copyConcurrency: 4, maxReceiveCount: MAX_ATTEMPTS + 2, maxPolls: 1000 },
}));
let executions = 0;

type Handler = (event: never, context: never) => Promise<unknown>;
const invoke = (h: unknown) => async (input: unknown): Promise<never> => ({
  Payload: await (h as Handler)((input as { Payload: never }).Payload, lambdaContext() as never),
}) as never;

beforeAll(async () => {
  pair = await startPair();
  // The deployment's secrets name one source and one target: all flows of this file use the same two databases.
  urls = await freshDatabases(pair, 'aws');
  aws = await startAwsLocal({ ...urls, maxReceiveCount: MAX_ATTEMPTS + 2 });
  poller = pollLikeLambda(aws.sqs, aws.queueUrl, (e: SQSEvent) => copyRange(e, lambdaContext() as never) as never, {
    batchSize: 2,
    visibilitySeconds: 5,
    signal: stopPolling.signal,
    gate,
  });
});

afterAll(async () => {
  stopPolling.abort();
  await poller?.catch(() => {});
  await aws?.stop();
  await pair?.stop();
});

function machine(streamers: Promise<unknown>[]) {
  const sm = new StateMachine(definition, { validationOptions: { checkArn: false, checkPaths: true } });
  return (input: Record<string, unknown>) => {
    const id = `arn:aws:states:us-east-1:000000000000:execution:ferry-test-migration:run-${++executions}`;
    running.add(id);
    const run = sm.run(input as never, {
      context: { Execution: { Id: id, Input: input as never }, StateMachine: { Id: 'arn:aws:states:us-east-1:000000000000:stateMachine:ferry-test-migration' } },
      overrides: {
        taskResourceLocalHandlers: {
          Validate: invoke(validate),
          Plan: invoke(plan),
          Enqueue: invoke(enqueue),
          CheckProgress: invoke(progress),
          // In place of ecs:runTask.sync: what the streamer image runs with FERRY_TASK=finalize, in this process
          // (aws-production.test.ts runs the container's entry point itself).
          Finalize: async (input) => {
            const env = (input as { Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] } }).Overrides.ContainerOverrides[0]!.Environment;
            const flow = env.find((e) => e.Name === 'FERRY_FLOW')!.Value;
            expect(env).toContainEqual({ Name: 'FERRY_TASK', Value: 'finalize' });
            const ctx = await awsContext();
            await finalize(ctx, { config: await ctx.store.getCheckpoint(flow, AWS_CONFIG), flow });
            return {} as never;
          },
          Report: invoke(status),
          RecordFailure: invoke(recordFailure),
          // In place of ECS RunTask: the container's own code, in this process.
          StartStreamer: async (input) => {
            const { flow } = (input as { Payload: { flow: string } }).Payload;
            const ctx = await awsContext();
            // Only the flow id, as through RunTask: the streamer reads the config Plan stored.
            streamers.push(runStreamerProcess(ctx, { flow, signal: new AbortController().signal, progress: silentProgress }));
            return { Payload: { task: 'local' } } as never;
          },
        },
      },
    });
    void run.result.finally(() => running.delete(id)).catch(() => {});
    return run;
  };
}

async function verify(flowId: string) {
  const ctx = await awsContext();
  const flow = (await ctx.store.getFlow(flowId))!;
  const config = awsConfig({}, ctx.settings);
  const source = new PgSnapshotSource(config.source, { connections: 2 });
  const target = new PgSnapshotTarget(config.target, { connections: 2 });
  try {
    return await verifyFlow({ source, target }, flow, { concurrency: 2 });
  } finally {
    await Promise.allSettled([source.close(), target.close()]);
  }
}

describe('the AWS workflow, executed locally', () => {
  it('the definition is valid ASL (asl-validator) and every Task names a function placeholder that infra substitutes', async () => {
    const validator = (await import('asl-validator')).default;
    const result = await validator(definition);
    expect(result.errors).toEqual([]);
    expect(result.isValid).toBe(true);
    const tasks = Object.entries(definition.States as Record<string, { Type: string; Parameters?: { FunctionName?: string } }>).filter(([, s]) => s.Type === 'Task');
    expect(tasks.map(([name]) => name).sort()).toEqual(['CheckProgress', 'ContinueAsNew', 'Enqueue', 'Finalize', 'Plan', 'RecordFailure', 'Report', 'StartStreamer', 'Validate']);
    for (const [name, s] of tasks) {
      if (name !== 'ContinueAsNew' && name !== 'Finalize') expect(s.Parameters?.FunctionName).toMatch(/^\$\{[A-Za-z]+FunctionArn\}$/);
    }
    expect((definition.States.Finalize as { Resource: string }).Resource).toBe('arn:aws:states:::ecs:runTask.sync');
  });

  it('plans, fans range jobs out through SQS, finalizes, starts the streamer, and streams changes', async () => {
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), at timestamptz);
      CREATE TABLE app.pairs (a int, b text, v jsonb, PRIMARY KEY (a, b));
      CREATE INDEX items_name ON app.items (name);
      INSERT INTO app.items SELECT g, 'item ' || g, g / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 min' FROM generate_series(1, 12000) g;
      INSERT INTO app.pairs SELECT g % 500, 'k' || g, jsonb_build_object('g', g) FROM generate_series(1, 6000) g;
      ANALYZE;`);
    const streamers: Promise<unknown>[] = [];
    const input = {
      name: 'aws-cdc', include: ['app.*'], mode: 'snapshot+cdc', rowsPerRange: 2500, batchRows: 1000, maxAttempts: MAX_ATTEMPTS,
      aws: { pollSeconds: 1 }, cdc: { batchMs: 200, heartbeatSeconds: 1 },
    };
    const report = (await machine(streamers)(input).result) as { flow: string; phase: string; rows: number; tables: unknown[] };
    expect(report).toMatchObject({ flow: 'aws-cdc', phase: 'streaming', rows: 18000 });
    expect(report.tables).toHaveLength(2);
    expect(streamers).toHaveLength(1);

    const indexes = await query(urls.targetUrl, `SELECT indexname FROM pg_indexes WHERE schemaname = 'app' AND indexname = 'items_name'`);
    expect(indexes).toHaveLength(1);

    await query(urls.sourceUrl, `
      INSERT INTO app.items SELECT g, 'late ' || g, 1, now() FROM generate_series(20001, 20500) g;
      UPDATE app.items SET price = price * 2 WHERE id % 10 = 0;
      DELETE FROM app.pairs WHERE a < 50;
      UPDATE app.items SET id = -id WHERE id = 77;`);
    await waitFor('the streamer to catch up', async () => (await verify('aws-cdc')).ok, 60_000);

    // A second streamer for the same flow (a duplicated RunTask, a replaced task) does not stream: it waits for the
    // lease, then exits cleanly.
    const ctx = await awsContext();
    const second = await runStreamerProcess(ctx, {
      flow: 'aws-cdc', config: awsConfig(input, ctx.settings), signal: new AbortController().signal, progress: silentProgress, leaseWaitMs: 1500,
    });
    expect(second).toBe('standby');

    // `ferry stop`'s request, answered by the streamer: drain, then exit.
    await ctx.store.updateFlow('aws-cdc', { phase: 'stopping' });
    expect(await streamers[0]).toBe('drained');
    expect((await ctx.store.getFlow('aws-cdc'))?.phase).toBe('stopped');
    expect((await verify('aws-cdc')).ok).toBe(true);
  });

  it('fails the execution with the table and range of a job that exhausted its retries', async () => {
    await query(urls.sourceUrl, `
      CREATE SCHEMA bad;
      CREATE TABLE bad.scores (id int PRIMARY KEY, score int);
      INSERT INTO bad.scores SELECT g, g FROM generate_series(1, 3000) g;
      ANALYZE;`);
    // The target already has the table, empty, with a rule the source's rows break.
    await query(urls.targetUrl, `CREATE SCHEMA bad; CREATE TABLE bad.scores (id int PRIMARY KEY, score int CHECK (score < 2900))`);
    const input = { name: 'aws-bad', include: ['bad.*'], rowsPerRange: 1000, batchRows: 500, maxAttempts: MAX_ATTEMPTS, aws: { pollSeconds: 1 } };
    const error = await machine([])(input).result.then(() => undefined, (e: Error) => e);
    expect(error).toBeDefined();
    const cause = (error as Error & { cause: Error }).cause;
    expect(cause.name).toBe('RangeJobFailed');
    expect(cause.message).toContain('bad.scores id in [');
    expect(cause.message).toContain('violates check constraint');
    expect(cause.message).toContain(`after ${MAX_ATTEMPTS} attempts`);
    // The failure is on the flow too, with its cause (`ferry aws status`, the next execution).
    const flow = await (await awsContext()).store.getFlow('aws-bad');
    expect(flow?.phase).toBe('failed');
    expect(flow?.error).toContain('RangeJobFailed: bad.scores id in [');
  });

  it('fails the execution with a clear cause on bad input, before writing anything', async () => {
    const error = await machine([])({ name: 'aws-typo', include: ['nope.*'], worker: 3 }).result.then(() => undefined, (e: Error) => e);
    const cause = (error as Error & { cause: Error }).cause;
    expect(cause.name).toBe('MigrationFailed');
    expect(cause.message).toContain('unknown field `worker`');
    expect(await (await awsContext()).store.getFlow('aws-typo')).toBeUndefined();
  });

  it('a copy Lambda at its time budget re-enqueues its cursor, and a duplicate delivery leaves one copy', async () => {
    await query(urls.sourceUrl, `CREATE SCHEMA budget; CREATE TABLE budget.t (id int PRIMARY KEY, v text); INSERT INTO budget.t SELECT g, md5(g::text) FROM generate_series(1, 5000) g; ANALYZE`);
    const ctx = await awsContext();
    const config = { name: 'aws-budget', include: ['budget.*'], rowsPerRange: 100000, batchRows: 1000, maxAttempts: MAX_ATTEMPTS };
    await validate({ config, execution: 'budget-run' } as never, lambdaContext() as never);
    await plan({ config } as never, lambdaContext() as never);
    const [job] = await ctx.store.listJobs('aws-budget');
    const record = (id: string) => ({
      messageId: id,
      receiptHandle: id,
      body: JSON.stringify({ flow: 'aws-budget', id: job!.id, table: job!.table, range: job!.range, cursor: null, attempt: 0 }),
      attributes: { ApproximateReceiveCount: '1' },
    });
    // Own queue-less worker: the continuation goes to the real queue, where the poller picks it up.
    const worker = new CopyWorker(ctx);
    // Hold the queue's poller until the first run is counted: otherwise it can pick up the continuation and copy
    // the next chunk before the count (seen under load).
    await gate.hold();
    // The no-new-chunk deadline is now (the margin is all the time left): one chunk runs and commits, then the
    // budget is spent. (A chunk cut at its abort deadline is in aws-production.test.ts.)
    const [first] = await worker.run([record('m1')], { remainingMs: () => 600_000, marginMs: 600_000, owner: 'budget' });
    expect(first).toEqual({ status: 'fulfilled', value: 'yielded' });
    const afterFirst = await query(urls.targetUrl, 'SELECT count(*) n FROM budget.t');
    expect(Number(afterFirst[0]!.n)).toBe(1000); // one chunk, committed, before the budget ran out
    gate.release();
    // The continuation (from the queue) and a duplicate of the original message (straight to the handler).
    const [dup] = await worker.run([record('m2')], { remainingMs: () => 600_000, owner: 'dup' });
    expect(dup?.status).toBe('fulfilled');
    await waitFor('the job to finish', async () => (await ctx.store.getJob('aws-budget', job!.id))?.status === 'done', 30_000);
    const rows = await query(urls.targetUrl, 'SELECT count(*) n, count(DISTINCT id) d FROM budget.t');
    expect(rows[0]).toEqual({ n: '5000', d: '5000' });
  });
});
