/**
 * The side effects of the migration workflow, one function per Step Functions state (PeerDB's split: the workflow
 * orchestrates, activities act, connectors talk to databases). Each takes and returns plain JSON, and each is
 * idempotent: Step Functions retries a state after a Lambda failure, and a retried activity must converge.
 */
import { openFlowAdapters, hasMongoEndpoint } from '../local/engines.js';
import { engineOf } from '../../config/schema.js';
import type { SnapshotSource } from '../../core/ports/source.js';
import type { SnapshotTarget } from '../../core/ports/target.js';
import type { ChangeSource } from '../../core/ports/change-source.js';
import { PgChangeSource } from '../../adapters/postgres/cdc/change-source.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../../config/load.js';
import { CDC_CHECKPOINT, CDC_LAG } from '../../core/cdc/streamer.js';
import { ConfigError, PreflightError } from '../../core/errors.js';
import { connectionRoom } from '../../adapters/postgres/connection-budget.js';
import { checkConnectionBudget, type Room } from './connection-budget.js';
import { takeWorkflowLease, WORKFLOW_EXECUTION, type ExecutionStatus } from './workflow-lease.js';
import type { Json, TableSchema } from '../../core/model.js';
import { keylessNotStreamable, type ChangeTargetCapabilities } from '../../core/ports/capabilities.js';
import { PG_CHANGE_TARGET_CAPABILITIES } from '../../adapters/postgres/capabilities.js';
import { finalizeSnapshot } from '../../core/snapshot/finalize.js';
import { describePlan, planSnapshot } from '../../core/snapshot/plan.js';
import { configSummary, flowIdOf } from '../local/flow-id.js';
import { awsConfig, WORKFLOW_KEYS, type AwsContext } from './context.js';
import type { StreamerLauncher } from './launcher.js';

export interface WorkflowInput {
  config: unknown;
  flow?: string;
  /** The execution's ARN ($$.Execution.Id): the workflow lease's owner. */
  execution?: string;
}

/** What the deployment was built with (infra/settings.ts, passed to Validate as environment). */
export interface DeploymentLimits {
  /** The copy function's maximum concurrency. */
  copyConcurrency: number;
  /** The range-job queue's maxReceiveCount (redrive to the DLQ). */
  maxReceiveCount: number;
  /** Polls of one execution before it continues as a new one (Step Functions caps an execution's history). */
  maxPolls: number;
}

export interface ValidateDeps {
  executions: ExecutionStatus;
  limits: DeploymentLimits;
  /** Free connections of a database (the PostgreSQL adapter by default; tests may pass figures). */
  room?: (endpoint: LoadedConfig['source'], role: 'source' | 'target') => Promise<Room>;
}

/** The checkpoint holding the execution's config (placeholders, no secrets): the streamer reads it from here. */
export const AWS_CONFIG = 'aws:config';

interface Adapters {
  source: SnapshotSource;
  target: SnapshotTarget;
  changes?: ChangeSource;
  /** What the streamer's change target will be able to do (it is opened only by the streamer). */
  applies: ChangeTargetCapabilities;
}

async function withAdapters<T>(config: LoadedConfig, fn: (a: Adapters) => Promise<T>): Promise<T> {
  // A MongoDB endpoint on either side (additive): the adapters and codec bridge of engines.ts.
  const mongo = hasMongoEndpoint(config)
    ? openFlowAdapters(config, { cdc: config.mode === 'snapshot+cdc', warn: () => {}, heartbeatMs: config.cdc.heartbeatSeconds * 1000 })
    : undefined;
  const a: Adapters = mongo
    ? { source: mongo.source, target: mongo.target, changes: mongo.changes, applies: mongo.applier?.capabilities ?? PG_CHANGE_TARGET_CAPABILITIES }
    : {
        source: new PgSnapshotSource(config.source, { connections: 2 }),
        target: new PgSnapshotTarget(config.target, { connections: 2 }),
        changes: config.mode === 'snapshot+cdc' ? new PgChangeSource(config.source) : undefined,
        applies: PG_CHANGE_TARGET_CAPABILITIES,
      };
  try {
    return await fn(a);
  } finally {
    await Promise.allSettled([a.source.close(), a.target.close(), a.changes?.close()]);
  }
}

const selection = (c: LoadedConfig) => ({
  include: c.include,
  exclude: c.exclude,
  rename: c.rename,
  tables: c.tables,
  objects: { roles: c.roles, owner: c.schema.owner },
});

/**
 * On AWS the snapshot is read by many Lambdas, long after the Lambda that created the slot has gone, so its read
 * handle is never used (Plan releases it): keyless tables are refused for streaming unless the target's replay of
 * their changes converges (capabilities).
 */
function assertStreamableOnAws(tables: TableSchema[], a: Adapters): void {
  if (!a.changes) return;
  const keyless = keylessNotStreamable(tables, { source: a.changes.capabilities, target: a.applies }, false);
  if (keyless.length > 0) {
    throw new PreflightError(
      `on AWS, tables without a primary key cannot be streamed exactly: ${keyless.join(', ')}`,
      'add a primary key, exclude them, or run this flow locally with `ferry run` (which holds the slot\'s snapshot)',
    );
  }
}

/**
 * Validate the config, take the flow's workflow lease (one execution per flow), check the deployment's limits and
 * preflight both sides. Writes only the lease.
 */
export async function validate(ctx: AwsContext, input: WorkflowInput, deps: ValidateDeps) {
  const config = awsConfig(input.config, ctx.settings);
  const flow = flowIdOf(config);
  const continuedFrom = (input.config as { ferryContinuedFrom?: unknown }).ferryContinuedFrom;
  const execution = input.execution ?? 'unknown-execution';
  const base = { flow, mode: config.mode, pollSeconds: config.aws.pollSeconds, maxPolls: deps.limits.maxPolls };
  await takeWorkflowLease(ctx.store, deps.executions, {
    flow,
    execution,
    continuedFrom: typeof continuedFrom === 'string' ? continuedFrom : undefined,
  });
  // A continuation of this flow's own execution: everything was checked and planned; go back to polling.
  if (typeof continuedFrom === 'string') return { ...base, continued: true };
  if (config.maxAttempts >= deps.limits.maxReceiveCount) {
    throw new ConfigError(
      `maxAttempts: ${config.maxAttempts} does not fit under the queue's maxReceiveCount of ${deps.limits.maxReceiveCount}: ` +
        'SQS would move a job\'s last delivery to the dead-letter queue before Ferry records its failure',
      `set maxAttempts to at most ${deps.limits.maxReceiveCount - 1}, or deploy with FERRY_MAX_RECEIVE_COUNT=${config.maxAttempts + 1} or more`,
    );
  }
  const room = deps.room ?? connectionRoom;
  for (const role of ['source', 'target'] as const) {
    if (engineOf(config[role]) !== 'postgres') continue; // a PostgreSQL connection budget
    checkConnectionBudget(role, await room(config[role], role), deps.limits.copyConcurrency, config.mode === 'snapshot+cdc');
  }
  await withAdapters(config, async (adapters) => {
    const { source, target, changes } = adapters;
    const resuming = (await ctx.store.getFlow(flow)) !== undefined;
    const { tables } = await describePlan(source, selection(config), Number.MAX_SAFE_INTEGER);
    assertStreamableOnAws(tables, adapters);
    await changes?.preflight(flow, tables);
    await target.preflight(tables, { truncate: false, resuming: resuming || config.target.onExistingRows === 'truncate' });
  });
  return { ...base, continued: false };
}

/** Slot and publication first (snapshot+cdc), then the stored plan, the target tables and the jobs. */
export async function plan(ctx: AwsContext, input: WorkflowInput) {
  const config = awsConfig(input.config, ctx.settings);
  const flow = flowIdOf(config);
  return withAdapters(config, async (adapters) => {
    const { source, target, changes } = adapters;
    const planned = await planSnapshot(
      {
        source,
        target,
        store: ctx.store,
        preflight: async (tables) => {
          assertStreamableOnAws(tables, adapters);
          await changes?.preflight(flow, tables);
        },
      },
      { flow, selection: selection(config), rowsPerRange: config.rowsPerRange, truncate: config.target.onExistingRows === 'truncate', summary: configSummary(config) },
    );
    // A new execution of a flow whose last one failed picks it up again (done ranges stay done).
    if (planned.flow.phase === 'failed') await ctx.store.updateFlow(flow, { phase: 'snapshot' });
    if (changes) {
      const resuming = (await ctx.store.getCheckpoint(flow, CDC_CHECKPOINT)) !== undefined;
      const start = await changes.prepare(flow, planned.flow.tables, { resuming });
      await changes.releaseSnapshot();
      if (!resuming) {
        await ctx.store.putCheckpoint(flow, CDC_CHECKPOINT, start.position);
      }
    }
    // Only the flow id crosses RunTask and EventBridge (whose inputs are capped at 8 KB): the streamer, the
    // supervisor and the CLI read the config from here. It holds placeholders, never the URLs.
    await ctx.store.putCheckpoint(flow, AWS_CONFIG, storedConfig(input.config));
    return { flow, mode: config.mode, jobs: planned.jobs.length, pollSeconds: config.aws.pollSeconds };
  });
}

/** Every job not done goes to SQS. Enqueuing twice only duplicates deliveries, which the copy path absorbs. */
export async function enqueue(ctx: AwsContext, input: WorkflowInput) {
  if (!ctx.queue) throw new Error('no job queue configured');
  const flow = requireFlow(input);
  const jobs = (await ctx.store.listJobs(flow)).filter((j) => j.status !== 'done');
  await ctx.queue.enqueue(jobs.map((j) => ({ flow, id: j.id, table: j.table, range: j.range, cursor: j.cursor, attempt: j.attempts })));
  return { enqueued: jobs.length };
}

export async function progress(ctx: AwsContext, input: WorkflowInput) {
  const flow = requireFlow(input);
  const counts = Object.values(await ctx.store.countJobs(flow));
  const sum = (k: 'total' | 'done' | 'failed' | 'rows') => counts.reduce((n, c) => n + c[k], 0);
  const failed = sum('failed') > 0 ? await ctx.store.listJobs(flow, 'failed') : [];
  const cause = failed.length
    ? failed.slice(0, 5).map((j) => `${j.table} ${j.label}: ${j.error ?? 'failed'} (after ${j.attempts} attempts)`).join('; ')
    : '';
  return { total: sum('total'), done: sum('done'), failed: sum('failed'), remaining: sum('total') - sum('done') - sum('failed'), rows: sum('rows'), cause };
}

export async function finalize(ctx: AwsContext, input: WorkflowInput) {
  const config = awsConfig(input.config, ctx.settings);
  const flow = requireFlow(input);
  const record = await ctx.store.getFlow(flow);
  if (!record) throw new Error(`flow ${flow} is not in the state store`);
  if (record.phase === 'streaming' || record.phase === 'done') return { warnings: [] as string[] };
  return withAdapters(config, async ({ source, target }) => {
    const { warnings } = await finalizeSnapshot({ source, target, store: ctx.store }, record);
    await ctx.store.updateFlow(flow, { phase: config.mode === 'snapshot+cdc' ? 'streaming' : 'done' });
    return { warnings };
  });
}

export async function startStreamer(ctx: AwsContext, launcher: StreamerLauncher, input: WorkflowInput) {
  const flow = requireFlow(input);
  return { task: await launcher.launch(flow) };
}

/**
 * The Catch of every state lands here: record `failed` with the cause on the flow, so `ferry aws status`, the
 * alarms and the next execution see it. Not when another execution owns the flow (FlowBusy: this one never ran),
 * and not once the flow is streaming (the streamer owns it from there; a failed Report does not undo a cutover).
 */
export async function recordFailure(
  ctx: AwsContext,
  input: WorkflowInput & { state?: { validated?: { flow?: string }; error?: { Error?: string; Cause?: string } } },
) {
  const error = input.state?.error ?? {};
  const flow = input.state?.validated?.flow;
  if (!flow) return { recorded: false }; // Validate failed before it knew the flow (bad config): nothing to record on
  const record = await ctx.store.getFlow(flow);
  if (!record || !['planned', 'snapshot', 'finalizing'].includes(record.phase)) return { recorded: false };
  const holder = await ctx.store.getCheckpoint(flow, WORKFLOW_EXECUTION);
  if (holder !== undefined && holder !== input.execution) return { recorded: false };
  await ctx.store.updateFlow(flow, { phase: 'failed', error: `${error.Error ?? 'failed'}: ${causeText(error.Cause)}`.slice(0, 4000) });
  return { recorded: true };
}

/** A Lambda's cause is its error as JSON (`{"errorType","errorMessage"}`); a Fail's is plain text. */
function causeText(cause: string | undefined): string {
  if (!cause) return 'no cause given';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string };
    return parsed.errorMessage ?? cause;
  } catch {
    return cause;
  }
}

/** The execution's config as stored: the workflow's own keys dropped. */
function storedConfig(raw: unknown): Json {
  const copy = { ...(raw as Record<string, Json>) };
  for (const k of WORKFLOW_KEYS) delete copy[k];
  return copy;
}

export async function status(ctx: AwsContext, input: WorkflowInput): Promise<Json> {
  const flow = requireFlow(input);
  const record = await ctx.store.getFlow(flow);
  const counts = await ctx.store.countJobs(flow);
  const tables = Object.entries(counts).map(([table, c]) => ({ table, rows: c.rows, bytes: c.bytes, jobs: c.total, done: c.done, failed: c.failed }));
  return {
    flow,
    phase: record?.phase ?? 'unknown',
    tables,
    rows: tables.reduce((n, t) => n + t.rows, 0),
    bytes: tables.reduce((n, t) => n + t.bytes, 0),
    checkpoint: (await ctx.store.getCheckpoint(flow, CDC_CHECKPOINT)) ?? null,
    lag: (await ctx.store.getCheckpoint(flow, CDC_LAG)) ?? null,
  };
}

function requireFlow(input: WorkflowInput): string {
  if (!input.flow) throw new Error('the workflow input lacks `flow` (set by the Plan state)');
  return input.flow;
}
