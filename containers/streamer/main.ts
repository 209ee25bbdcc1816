/**
 * The Fargate streamer's entry point. Configuration arrives as environment (set by the StartStreamer Lambda's
 * RunTask override and by the task definition): FERRY_FLOW, FERRY_CONFIG (the execution's config JSON, with
 * ${FERRY_SOURCE_URL}/${FERRY_TARGET_URL} placeholders), FERRY_STATE_TABLE, and the two URLs from Secrets Manager.
 * Exit codes: 0 stopped cleanly (drained, SIGTERM, or another streamer holds the flow), 1 on error.
 */
import { awsConfig, createAwsContext } from '../../src/runtime/aws/context.js';
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
  const ctx = createAwsContext(settings);
  const config = awsConfig(JSON.parse(required('FERRY_CONFIG')), settings);
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
  const exit = await runStreamerProcess(ctx, { flow: required('FERRY_FLOW'), config, signal: stop.signal, progress });
  reporter.close();
  logger.info({ exit }, 'streamer exited');
  return 0;
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
