/**
 * The AWS runtime's production behaviours, on 127.0.0.1 (DynamoDB Local, fauxqs, aws-local-stepfunctions running
 * infra/workflow.asl.json, embedded PostgreSQL): the streamer container's own entry point as a child process,
 * killed with SIGKILL and relaunched by the supervisor, cutover through the real `ferry aws stop|verify|cleanup` CLI,
 * a stalled stream ending its streamer with exit 1, the poll loop continuing as a new execution, one execution per
 * flow, the connection budget, placeholders limited
 * to the documented two, and a chunk cut at its deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import type { SQSEvent } from 'aws-lambda';
import { StateMachine } from 'aws-local-stepfunctions';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handler as copyRange } from '../functions/copy-range.js';
import { handler as enqueue } from '../functions/enqueue.js';
import { awsContext } from '../functions/lib/context.js';
import { redactError } from '../functions/lib/middleware.js';
import { handler as plan } from '../functions/plan.js';
import { handler as progress } from '../functions/progress.js';
import { handler as recordFailure } from '../functions/record-failure.js';
import { handler as status } from '../functions/status.js';
import { validateHandler } from '../functions/validate.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { tableKey } from '../src/core/model.js';
import { silentProgress } from '../src/core/progress.js';
import type { SnapshotSource } from '../src/core/ports/source.js';
import { processJob } from '../src/core/snapshot/process-job.js';
import { startStreamer } from '../src/runtime/aws/activities.js';
import type { DeploymentLimits } from '../src/runtime/aws/activities.js';
import type { StreamerLauncher } from '../src/runtime/aws/launcher.js';
import { watchStream } from '../src/runtime/aws/stream-health.js';
import { superviseStreamer } from '../src/runtime/aws/supervisor.js';
import { lambdaContext, pollLikeLambda, startAwsLocal, type AwsLocal } from './support/aws-local.js';
import { ferry, startFerry, waitFor, writeConfig } from './support/ferry-cli.js';
import { freshDatabases, query, startPair, type PgPair } from './support/pg-pair.js';

const definition = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'infra', 'workflow.asl.json'), 'utf8'));
// Under vitest, the run's build of the same sources (test/support/cli-build.ts): started by plain node, no tsx loader.
const BUILT = process.env.FERRY_PREBUILT_CLI ? dirname(process.env.FERRY_PREBUILT_CLI) : undefined;
const MAIN = BUILT ? join(BUILT, 'containers', 'streamer', 'main.js') : join(import.meta.dirname, '..', 'containers', 'streamer', 'main.ts');
const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';

let pair: PgPair;
let aws: AwsLocal;
let urls: { sourceUrl: string; targetUrl: string };
let polling: { stop: AbortController; done: Promise<void> } | undefined;
const running = new Set<string>();
let limits: DeploymentLimits = { copyConcurrency: 4, maxReceiveCount: 6, maxPolls: 1000 };
const validate = validateHandler(() => ({
  executions: { status: async (arn) => (running.has(arn) ? 'RUNNING' : 'SUCCEEDED') },
  limits,
}));

type Handler = (event: never, context: never) => Promise<unknown>;
const invoke = (h: unknown) => async (input: unknown): Promise<never> =>
  ({ Payload: await (h as Handler)((input as { Payload: never }).Payload, lambdaContext() as never) }) as never;

function startCopies() {
  if (polling) return;
  const stop = new AbortController();
  polling = {
    stop,
    done: pollLikeLambda(aws.sqs, aws.queueUrl, (e: SQSEvent) => copyRange(e, lambdaContext() as never) as never, {
      batchSize: 2,
      visibilitySeconds: 5,
      signal: stop.signal,
    }),
  };
}

/** The streamer image as ECS would run it: its own entry point, the task definition's env plus the overrides. */
async function containerTask(overrides: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...(BUILT ? [] : ['--import', 'tsx']), MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...overrides,
      FERRY_STATE_TABLE: aws.tableName,
      FERRY_SOURCE_URL: urls.sourceUrl,
      FERRY_TARGET_URL: urls.targetUrl,
      FERRY_LEASE_TTL_MS: '3000',
      FERRY_HEALTH_INTERVAL_MS: '500',
      FERRY_STALL_MS: '4000',
      FERRY_STALL_GRACE_MS: '2000',
      FERRY_LOG_LEVEL: 'warn',
    },
  });
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-20000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-20000)));
  (child as ChildProcess & { output: () => string }).output = () => out;
  return child;
}

/** The launcher StartStreamer and the supervisor use: a streamer task with only the flow id in its overrides. */
class ChildLauncher implements StreamerLauncher {
  readonly children: ChildProcess[] = [];
  async launch(flow: string): Promise<string> {
    const child = await containerTask({ FERRY_FLOW: flow });
    this.children.push(child);
    return `pid:${child.pid}`;
  }
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null || child.signalCode ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

let executions = 0;
function machine(opts: { launcher?: StreamerLauncher; continued?: Promise<unknown>[] } = {}) {
  const sm = new StateMachine(definition, { validationOptions: { checkArn: false, checkPaths: true } });
  const start = (input: Record<string, unknown>) => {
    const id = `arn:aws:states:us-east-1:000000000000:execution:ferry-test-migration:prod-${++executions}`;
    running.add(id);
    const run = sm.run(input as never, {
      context: { Execution: { Id: id, Input: input as never }, StateMachine: { Id: 'arn:aws:states:us-east-1:000000000000:stateMachine:ferry-test-migration' } },
      overrides: {
        taskResourceLocalHandlers: {
          Validate: invoke(validate),
          Plan: invoke(plan),
          Enqueue: invoke(enqueue),
          CheckProgress: invoke(progress),
          // In place of ecs:runTask.sync: the streamer image's entry point with the overrides the state sends.
          Finalize: async (input) => {
            const env = (input as { Overrides: { ContainerOverrides: { Environment: { Name: string; Value: string }[] }[] } }).Overrides.ContainerOverrides[0]!.Environment;
            const child = await containerTask(Object.fromEntries(env.map((e) => [e.Name, e.Value])));
            const code = await exitOf(child);
            if (code !== 0) throw Object.assign(new Error(`finalize task exited ${code}: ${(child as ChildProcess & { output: () => string }).output()}`), { name: 'States.TaskFailed' });
            return {} as never;
          },
          Report: invoke(status),
          RecordFailure: invoke(recordFailure),
          StartStreamer: async (input) =>
            ({ Payload: await startStreamer(await awsContext(), opts.launcher!, (input as { Payload: never }).Payload) }) as never,
          // In place of states:startExecution: the same machine, with the merged input it would be given.
          ContinueAsNew: async (input) => {
            const { Input } = input as { Input: Record<string, unknown> };
            const next = start(typeof Input === 'string' ? JSON.parse(Input) : Input);
            opts.continued?.push(next.result);
            return { ExecutionArn: next.id } as never;
          },
        },
      },
    });
    void run.result.finally(() => running.delete(id)).catch(() => {});
    return { id, result: run.result };
  };
  return start;
}

beforeAll(async () => {
  process.env.AWS_SECRET_ACCESS_KEY = SECRET;
  pair = await startPair();
  urls = await freshDatabases(pair, 'awsprod');
  aws = await startAwsLocal({ ...urls, maxReceiveCount: 6 });
  process.env.AWS_SECRET_ACCESS_KEY = SECRET; // startAwsLocal sets test credentials; any value works locally
});

afterAll(async () => {
  polling?.stop.abort();
  await polling?.done.catch(() => {});
  await aws?.stop();
  await pair?.stop();
});

describe('the deployed state machine definition', () => {
  it('has Retry and Catch on every Task state, and no retry for bad input', () => {
    const states = Object.entries(definition.States as Record<string, { Type: string; Retry?: { ErrorEquals: string[]; MaxAttempts?: number }[]; Catch?: unknown[] }>);
    const tasks = states.filter(([, s]) => s.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(9);
    for (const [name, s] of tasks) {
      expect(s.Retry?.length, `${name} has Retry`).toBeGreaterThan(0);
      expect(s.Catch?.length, `${name} has Catch`).toBeGreaterThan(0);
    }
    // Validate and Plan: a ConfigError or PreflightError fails at once rather than after minutes of retries.
    for (const name of ['Validate', 'Plan']) {
      const never = definition.States[name].Retry.find((r: { ErrorEquals: string[] }) => r.ErrorEquals.includes('ConfigError'));
      expect(never.MaxAttempts).toBe(0);
    }
  });
});

describe('security', () => {
  it('an execution input that tries ${AWS_SECRET_ACCESS_KEY} is refused, and the key appears nowhere', async () => {
    const error = await machine()({ name: 'aws-leak', include: ['${AWS_SECRET_ACCESS_KEY}.*'] }).result.then(() => undefined, (e: Error) => e);
    const cause = (error as Error & { cause: Error }).cause;
    expect(cause.name).toBe('MigrationFailed');
    expect(cause.message).toContain('${AWS_SECRET_ACCESS_KEY} is not allowed');
    expect(JSON.stringify(cause) + cause.message).not.toContain(SECRET);
    expect(await (await awsContext()).store.getFlow('aws-leak')).toBeUndefined();
  });

  it('errors leaving a function have passwords and secret values masked', () => {
    const url = 'postgres://app:s3cr3t-pw@db.internal:5432/shop';
    const text = `connect ${url} failed; password=s3cr3t-pw; key ${SECRET}; raw s3cr3t-pw`;
    const safe = redactError(text, [url]);
    expect(safe).not.toContain('s3cr3t-pw');
    expect(safe).not.toContain(SECRET);
    expect(safe).toContain('db.internal');
  });
});

describe('limits', () => {
  it('refuses a copy concurrency the databases have no free connections for, with the numbers', async () => {
    limits = { ...limits, copyConcurrency: 1000 };
    try {
      const error = await machine()({ name: 'aws-budget-refused', include: ['nothing.*'] }).result.then(() => undefined, (e: Error) => e);
      const cause = (error as Error & { cause: Error }).cause;
      expect(cause.name).toBe('MigrationFailed');
      expect(cause.message).toMatch(/the source has \d+ free connections \(max_connections \d+, \d+ reserved, \d+ in use\) but this deployment needs up to 1002/);
      expect(cause.message).toMatch(/FERRY_COPY_CONCURRENCY=\d+/);
    } finally {
      limits = { ...limits, copyConcurrency: 4 };
    }
  });

  it('refuses maxAttempts that does not fit under the queue\'s redrive count', async () => {
    const error = await machine()({ name: 'aws-attempts', include: ['x.*'], maxAttempts: 6 }).result.then(() => undefined, (e: Error) => e);
    expect((error as Error & { cause: Error }).cause.message).toContain("maxAttempts: 6 does not fit under the queue's maxReceiveCount of 6");
  });

  it('a chunk still running at its deadline is rolled back and its committed cursor yielded', async () => {
    await query(urls.sourceUrl, `CREATE SCHEMA cut; CREATE TABLE cut.t (id int PRIMARY KEY, v text);
      INSERT INTO cut.t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 3000) g; ANALYZE`);
    const ctx = await awsContext();
    const config = { name: 'aws-cut', include: ['cut.*'], rowsPerRange: 100000, batchRows: 1000, maxAttempts: 3 };
    await invoke(validate)({ Payload: { config, execution: 'cut-run' } });
    await invoke(plan)({ Payload: { config } });
    const flow = (await ctx.store.getFlow('aws-cut'))!;
    const tables = new Map(flow.tables.map((t) => [tableKey(t.source), t]));
    const [job] = await ctx.store.listJobs('aws-cut');
    const realSource = new PgSnapshotSource({ url: urls.sourceUrl } as never, { connections: 1 });
    const target = new PgSnapshotTarget({ url: urls.targetUrl } as never, { connections: 1 });
    // The real source, except that the chunk numbered `hang` delivers its first bytes and then stalls, like a
    // chunk of wide rows on a slow link: only the deadline can end it.
    const hanging = (hang: number): SnapshotSource => {
      let reads = 0;
      return Object.assign(Object.create(realSource) as SnapshotSource, {
        read: async (...args: Parameters<SnapshotSource['read']>) => {
          const rows = await realSource.read(...args);
          if (++reads !== hang) return rows;
          let sent = false;
          const stall = new Transform({
            transform(chunk, _enc, done) {
              if (!sent) {
                sent = true;
                done(null, chunk);
              } // later chunks: never called back
            },
          });
          stall.once('close', () => rows.stream.destroy());
          rows.stream.pipe(stall);
          return { format: rows.format, stream: stall };
        },
      });
    };
    const run = async (hang: number) => {
      const started = Date.now();
      const outcome = await processJob({ source: hanging(hang), target, store: ctx.store, progress: silentProgress, tables }, { ...job!, attempt: 0 }, 1, {
        owner: 'cut', batchRows: 1000, deadline: Date.now() + 60_000, abortAt: Date.now() + 1500, maxAttempts: 3, leaseMs: 60_000,
      });
      return { outcome, ms: Date.now() - started };
    };
    try {
      // First chunk committed, second one hangs: cut at the deadline, the first chunk's cursor yielded.
      const first = await run(2);
      expect(first.outcome.kind).toBe('yielded');
      expect(first.ms).toBeLessThan(10_000);
      const rows = await query(urls.targetUrl, 'SELECT count(*) n FROM cut.t');
      expect(rows[0]!.n).toBe('1000'); // the cut chunk left nothing behind
      // A delivery whose very first chunk hangs has made no progress: a failed attempt with advice, not a yield.
      const second = await run(1);
      expect(second.outcome).toMatchObject({ kind: 'retry' });
      expect((second.outcome as { error: string }).error).toContain('did not finish before the invocation');
      expect((await query(urls.targetUrl, 'SELECT count(*) n FROM cut.t'))[0]!.n).toBe('1000');
      // Unhindered, the job goes on from the committed cursor and ends with every row once.
      const third = await run(0);
      expect(third.outcome.kind).toBe('done');
      expect((await query(urls.targetUrl, 'SELECT count(*) n, count(DISTINCT id) d FROM cut.t'))[0]).toEqual({ n: '3000', d: '3000' });
    } finally {
      await Promise.allSettled([realSource.close(), target.close()]);
    }
  });
});

describe('the workflow', () => {
  it('one flow runs one execution at a time; a finished holder is taken over', async () => {
    const ctx = await awsContext();
    const first = 'arn:aws:states:us-east-1:000000000000:execution:ferry-test-migration:holder';
    running.add(first);
    const config = { name: 'aws-once', include: ['nothing.*'] };
    await invoke(validate)({ Payload: { config, execution: first } }).catch(() => {});
    const error = await machine()(config).result.then(() => undefined, (e: Error) => e);
    const cause = (error as Error & { cause: Error }).cause;
    expect(cause.name).toBe('FlowBusy');
    expect(cause.message).toContain(`already being migrated by execution ${first}`);
    running.delete(first);
    // The holder ended: the next execution takes the lease (and fails later, on its own merits).
    const later = await machine()(config).result.then(() => undefined, (e: Error) => e);
    expect((later as Error & { cause: Error }).cause.name).toBe('MigrationFailed');
    expect(await ctx.store.getCheckpoint('aws-once', 'workflow:execution')).not.toBe(first);
  });

  it('the poll loop continues as a new execution after maxPolls, which carries on to the end', async () => {
    await query(urls.sourceUrl, `CREATE SCHEMA loop; CREATE TABLE loop.t (id int PRIMARY KEY, v text);
      INSERT INTO loop.t SELECT g, md5(g::text) FROM generate_series(1, 2000) g; ANALYZE`);
    limits = { ...limits, maxPolls: 2 };
    const continued: Promise<unknown>[] = [];
    const start = machine({ continued });
    try {
      // The copies start only once the first execution has handed over: it cannot have finished by itself.
      // (Four ranges of 500 rows: the row count does not matter to the hand-over, only that ranges remain.)
      const run = start({ name: 'aws-loop', include: ['loop.*'], rowsPerRange: 500, batchRows: 500, maxAttempts: 3, aws: { pollSeconds: 1 } });
      const firstOut = (await run.result) as { executionArn: string };
      expect(firstOut.executionArn).toMatch(/prod-\d+$/);
      startCopies();
      let out: unknown;
      for (let i = 0; i < continued.length; i++) out = await continued[i];
      expect(continued.length).toBeGreaterThanOrEqual(1);
      expect(out).toMatchObject({ flow: 'aws-loop', phase: 'done', rows: 2000 });
      expect((await query(urls.targetUrl, 'SELECT count(*) n FROM loop.t'))[0]!.n).toBe('2000');
    } finally {
      limits = { ...limits, maxPolls: 1000 };
    }
  });

  it('snapshot, streaming, a killed and a stalled streamer relaunched by the supervisor, `ferry aws stop`, verify and cleanup', async () => {
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.items (id bigserial PRIMARY KEY, name text NOT NULL, price numeric(12,2));
      INSERT INTO app.items (name, price) SELECT 'item ' || g, g / 7.0 FROM generate_series(1, 6000) g;
      ANALYZE;`);
    startCopies();
    const launcher = new ChildLauncher();
    const config = { name: 'aws-live', include: ['app.*'], mode: 'snapshot+cdc', rowsPerRange: 2000, batchRows: 1000, maxAttempts: 3, aws: { pollSeconds: 1 }, cdc: { batchMs: 200, heartbeatSeconds: 1 } };
    const report = (await machine({ launcher })(config).result) as { phase: string; rows: number };
    expect(report).toMatchObject({ phase: 'streaming', rows: 6000 });
    expect(launcher.children).toHaveLength(1);
    const store = (await awsContext()).store;
    const same = async () => {
      const [a, b] = await Promise.all([
        query(urls.sourceUrl, `SELECT count(*) n, md5(string_agg(id || ':' || name || ':' || coalesce(price::text, ''), ',' ORDER BY id)) h FROM app.items`),
        query(urls.targetUrl, `SELECT count(*) n, md5(string_agg(id || ':' || name || ':' || coalesce(price::text, ''), ',' ORDER BY id)) h FROM app.items`),
      ]);
      return a[0]!.n === b[0]!.n && a[0]!.h === b[0]!.h;
    };

    await query(urls.sourceUrl, `INSERT INTO app.items (name, price) SELECT 'live ' || g, 1 FROM generate_series(1, 300) g`);
    await waitFor('the streamer to apply the first changes', same, 60_000);

    // `ferry aws ui`: the dashboard of the deployed flow, from DynamoDB only (no state machine, no source needed):
    // the snapshot's rows, the streamer's per-table counts and the slot it sampled.
    const uiConfig = writeConfig(config);
    const dash = startFerry(['aws', 'ui', uiConfig, '--state-table', aws.tableName, '--port', '0']);
    try {
      let stderr = '';
      dash.child.stderr!.on('data', (d) => (stderr += d));
      const url = await waitFor('the dashboard URL', async () => /dashboard at (http:\/\/\S+)/.exec(stderr)?.[1], 30_000);
      const api = new URL('api/state', url).toString();
      type State = { phase: string; totals: { rows: number }; changes: Record<string, { applied: { insert: number } }>; streaming: { position: string | null; slot: { retainedBytes: number } | null } | null };
      const state = await waitFor('the AWS dashboard to show the streamed inserts and the slot', async () => {
        const st = (await (await fetch(api)).json()) as State;
        return st.changes['app.items']?.applied.insert !== undefined && st.changes['app.items']!.applied.insert >= 300 && st.streaming?.slot ? st : undefined;
      }, 45_000);
      expect(state.phase).toBe('streaming');
      expect(state.totals.rows).toBe(6000);
      expect(state.streaming?.position).toBeTruthy();
      expect(state.streaming?.slot?.retainedBytes).toBeGreaterThanOrEqual(0);
    } finally {
      dash.child.kill('SIGTERM');
      await dash.exited;
    }

    // kill -9: no commit, no checkpoint, no lease release. ECS would report the task STOPPED with exit 137.
    const first = launcher.children[0]!;
    first.kill('SIGKILL');
    expect(await exitOf(first)).toBe(null);
    await query(urls.sourceUrl, `INSERT INTO app.items (name, price) SELECT 'while down ' || g, 2 FROM generate_series(1, 300) g;
      UPDATE app.items SET price = price + 1 WHERE id % 5 = 0; DELETE FROM app.items WHERE id % 11 = 0`);
    const stopped = {
      detail: {
        lastStatus: 'STOPPED', stopCode: 'EssentialContainerExited', stoppedReason: 'Essential container in task exited',
        containers: [{ name: 'streamer', exitCode: 137 }],
        overrides: { containerOverrides: [{ name: 'streamer', environment: [{ name: 'FERRY_FLOW', value: 'aws-live' }] }] },
      },
    };
    const decision = await superviseStreamer(store, launcher, stopped);
    expect(decision).toMatchObject({ action: 'relaunched', flow: 'aws-live', exitCode: 137 });
    expect(launcher.children).toHaveLength(2);
    await waitFor('the relaunched streamer to catch up', same, 90_000);

    // A stalled stream: the target's table locked, so the apply hangs while the source has WAL to send. The health
    // signal notices that the checkpoint no longer moves and the streamer exits 1; the supervisor relaunches it.
    const locker = new pg.Client({ connectionString: urls.targetUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE app.items IN ACCESS EXCLUSIVE MODE');
      await query(urls.sourceUrl, `INSERT INTO app.items (name, price) SELECT 'stalled ' || g, 3 FROM generate_series(1, 100) g`);
      const stalledChild = launcher.children[1]!;
      const started = Date.now();
      expect(await exitOf(stalledChild)).toBe(1);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect((stalledChild as ChildProcess & { output: () => string }).output()).toContain('stalled: the checkpoint has not moved');
      await locker.query('ROLLBACK');
    } finally {
      await locker.end();
    }
    const again = await superviseStreamer(store, launcher, { detail: { ...stopped.detail, containers: [{ name: 'streamer', exitCode: 1 }] } });
    expect(again).toMatchObject({ action: 'relaunched', exitCode: 1 });
    await waitFor('the streamer relaunched after the stall to catch up', same, 90_000);

    // Cutover: the real CLI against the deployed state; the streamer drains, syncs sequences, exits 0.
    const path = writeConfig({ ...config, source: { url: urls.sourceUrl }, target: { url: urls.targetUrl } });
    const deployed = ['--state-table', aws.tableName, '--state-machine', 'arn:aws:states:us-east-1:000000000000:stateMachine:ferry-test-migration'];
    const stop = await ferry(['aws', 'stop', path, ...deployed]);
    expect(stop.stderr).toContain('drained up to');
    expect(stop.stdout).toContain('verify: source and target are identical');
    expect(stop.code).toBe(0);
    expect(await exitOf(launcher.children[2]!)).toBe(0);
    expect((await store.getFlow('aws-live'))?.phase).toBe('stopped');
    expect(await same()).toBe(true);
    const seq = async (url: string) => Number((await query(url, `SELECT last_value FROM app.items_id_seq`))[0]!.last_value);
    expect(await seq(urls.targetUrl)).toBeGreaterThanOrEqual(await seq(urls.sourceUrl));
    // The supervisor leaves a stopped flow alone, and never treats the Finalize task (same image) as a streamer.
    expect((await superviseStreamer(store, launcher, stopped)).action).toBe('ignored');
    const finalizeTask = { detail: { ...stopped.detail, overrides: { containerOverrides: [{ environment: [{ name: 'FERRY_FLOW', value: 'aws-live' }, { name: 'FERRY_TASK', value: 'finalize' }] }] } } };
    expect(await superviseStreamer(store, launcher, finalizeTask)).toMatchObject({ action: 'ignored', why: expect.stringContaining('not a streamer task') });

    const verify = await ferry(['aws', 'verify', path, ...deployed]);
    expect(verify.code).toBe(0);
    const cleanup = await ferry(['aws', 'cleanup', path, ...deployed]);
    expect(cleanup.code).toBe(0);
    expect(cleanup.stdout).toContain('replication slot and publication dropped');
    expect(await query(urls.sourceUrl, `SELECT 1 FROM pg_replication_slots WHERE slot_name = 'ferry_aws_live'`)).toHaveLength(0);
    expect((await store.getFlow('aws-live'))?.phase).toBe('done');
  });
});

describe('the streamer health signal', () => {
  it('reports a stall when the checkpoint stops moving while the source has WAL to send, not when idle', async () => {
    let checkpoint = 1;
    let lagBytes = 0;
    const stalls: string[] = [];
    const unwatch = watchStream({
      intervalMs: 50,
      stallMs: 400,
      sample: async () => ({ checkpoint: checkpoint, lag: { lagBytes, retained: lagBytes, active: true } }),
      onStall: (r) => stalls.push(r),
    });
    try {
      await new Promise((r) => setTimeout(r, 700)); // idle: nothing to send, the checkpoint may rest
      expect(stalls).toEqual([]);
      lagBytes = 8192;
      for (let i = 0; i < 6; i++) {
        checkpoint++;
        await new Promise((r) => setTimeout(r, 100)); // moving: healthy
      }
      expect(stalls).toEqual([]);
      await new Promise((r) => setTimeout(r, 800)); // WAL to send, checkpoint frozen
      expect(stalls).toHaveLength(1);
      expect(stalls[0]).toContain('8192 bytes of WAL to send');
    } finally {
      unwatch();
    }
  });
});
