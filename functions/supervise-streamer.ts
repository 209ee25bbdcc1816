import type { Context } from 'aws-lambda';
import { emfLine } from '../src/runtime/aws/stream-health.js';
import { superviseStreamer, type TaskStoppedEvent } from '../src/runtime/aws/supervisor.js';
import { awsContext, streamerLauncher } from './lib/context.js';
import { logger } from './lib/middleware.js';

/**
 * EventBridge target for streamer tasks that stopped (infra/supervisor.ts). A relaunch is logged and counted
 * (Ferry/StreamerRestarts, the "streamer restarting" alarm); a failed relaunch throws, so EventBridge retries it
 * and the function's Errors metric raises the "streamer down" alarm.
 */
export const handler = async (event: TaskStoppedEvent, _context?: Context) => {
  const ctx = await awsContext();
  const decision = await superviseStreamer(ctx.store, streamerLauncher(), event);
  if (decision.action === 'relaunched') {
    logger.warn(decision, `streamer of flow ${decision.flow} stopped (${decision.reason}); started ${decision.task}`);
    process.stdout.write(`${emfLine(decision.flow, { StreamerRestarts: { value: 1, unit: 'Count' } })}\n`);
  } else {
    logger.info(decision, 'streamer stop needs no action');
  }
  return decision;
};
