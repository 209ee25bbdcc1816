/**
 * The Fargate streamer's entry point. Only the flow id arrives from outside (FERRY_FLOW, in the RunTask override);
 * the config is the one Plan stored in the state store (FERRY_STATE_TABLE, from the task definition), and the two
 * database URLs come from Secrets Manager (the task definition's `secrets`).
 *
 * Logs are JSON lines (pino) on stderr, and health samples are CloudWatch embedded-metric-format lines on stdout:
 * CloudWatch Logs turns them into the Ferry/CdcLagSeconds, CdcLagBytes, RetainedWalBytes and StreamerUp metrics.
 *
 * With FERRY_TASK=finalize the same image runs the workflow's Finalize step instead (Step Functions ecs:runTask.sync):
 * index and foreign-key builds on large tables outlast a Lambda's 15 minutes. Exit 0 when finalized, 1 on error
 * (the workflow retries; the step is idempotent).
 *
 * Exit codes: 0 stopped on purpose (drained by `ferry aws stop`, SIGTERM, or a standby whose flow is no longer
 * streaming); 1 on a fatal error or a stalled stream. The supervisor relaunches any streamer that ended while its
 * flow still streams, whatever the code; the code tells the logs and the alarms why.
 */
import { AWS_CONFIG, finalize } from '../../src/runtime/aws/activities.js';
import { awsConfig, createAwsContext } from '../../src/runtime/aws/context.js';
import { emfLine } from '../../src/runtime/aws/stream-health.js';
import { runStreamerProcess } from '../../src/runtime/aws/streamer-process.js';
import { createLogProgress } from '../../src/progress/log-progress.js';
import { createLogger } from '../../src/progress/logger.js';
import { createStreamReporter } from '../../src/progress/stream-reporter.js';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} is not set (it is set by the task definition or RunTask)`);
  return v;
}

async function main(): Promise<number> {
  const logger = createLogger({ name: 'ferry-streamer' });
  const settings = {
    stateTable: required('FERRY_STATE_TABLE'),
    sourceUrl: process.env.FERRY_SOURCE_URL,
    targetUrl: process.env.FERRY_TARGET_URL,
  };
  const flow = required('FERRY_FLOW');
  const ctx = createAwsContext(settings);
  if (process.env.FERRY_TASK === 'finalize') {
    const { warnings } = await finalize(ctx, { config: await ctx.store.getCheckpoint(flow, AWS_CONFIG), flow });
    for (const w of warnings) logger.warn(w);
    logger.info({ flow }, 'finalized');
    return 0;
  }
  // A config given in the environment (local runs) wins over the stored one.
  const config = process.env.FERRY_CONFIG ? awsConfig(JSON.parse(process.env.FERRY_CONFIG), settings) : undefined;
  const stop = new AbortController();
  // ECS sends SIGTERM, then SIGKILL after the stop timeout: commit, checkpoint and leave well before that.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      logger.info({ signal: sig }, 'stopping: committing applied changes and checkpointing');
      stop.abort();
    });
  }
  const reporter = createStreamReporter(process.stdout, logger);
  const progress = { ...createLogProgress(logger), streamed: reporter.streamed };
  const healthMs = Number(process.env.FERRY_HEALTH_INTERVAL_MS) || 30_000;
  const stallMs = Number(process.env.FERRY_STALL_MS) || undefined;
  const exit = await runStreamerProcess(ctx, {
    flow,
    config,
    signal: stop.signal,
    progress,
    health: stallMs ? { intervalMs: healthMs, stallMs } : undefined,
    leaseTtlMs: Number(process.env.FERRY_LEASE_TTL_MS) || undefined,
    // The stop is asked for first (commit what can be, checkpoint, release the lease). If a wedged call keeps it from
    // finishing, exit anyway: nothing durable is lost (the checkpoint only follows target commits) and the supervisor
    // starts a fresh task.
    onStall: (reason) => {
      const graceMs = Number(process.env.FERRY_STALL_GRACE_MS) || 30_000;
      setTimeout(() => {
        logger.error({ reason, graceMs }, 'stalled stream did not stop in time; exiting');
        process.exit(1);
      }, graceMs).unref();
    },
    onHealth: (s) =>
      process.stdout.write(
        `${emfLine(flow, {
          StreamerUp: { value: 1, unit: 'Count' },
          CdcLagBytes: { value: s.lag?.lagBytes ?? 0, unit: 'Bytes' },
          RetainedWalBytes: { value: s.lag?.retained ?? 0, unit: 'Bytes' },
          ...(s.lagSeconds !== undefined ? { CdcLagSeconds: { value: s.lagSeconds, unit: 'Seconds' as const } } : {}),
          StalledSeconds: { value: Math.round(s.stalledForMs / 1000), unit: 'Seconds' },
        })}\n`,
      ),
  });
  reporter.close();
  logger.info({ exit }, 'streamer exited');
  return exit === 'stalled' ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    createLogger({ name: 'ferry-streamer' }).error({ err }, 'streamer failed');
    process.exitCode = 1;
  },
);
