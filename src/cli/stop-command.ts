import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../core/errors.js';
import { withFlow } from './flow-context.js';

/**
 * Ask the running streamer to drain: it applies everything up to the source's position at this moment, checkpoints,
 * and exits. For cutover: stop writes to the source, `ferry stop`, then point the application at the target.
 */
export async function stopCommand(path: string, opts: { wait: boolean }): Promise<number> {
  return withFlow(path, async ({ store, flow }) => {
    if (flow.phase === 'stopped') {
      process.stdout.write(`flow ${flow.id} is already stopped\n`);
      return 0;
    }
    if (flow.phase !== 'streaming' && flow.phase !== 'stopping') {
      throw new FerryError(`flow ${flow.id} is ${flow.phase}, not streaming: nothing to stop`, 'stop a snapshot with Ctrl-C (it resumes when run again)');
    }
    await store.updateFlow(flow.id, { phase: 'stopping' });
    process.stderr.write(`ferry: asked flow ${flow.id} to drain and stop\n`);
    if (!opts.wait) return 0;
    for (let i = 0; i < 600; i++) {
      await sleep(500);
      if ((await store.getFlow(flow.id))?.phase === 'stopped') {
        process.stderr.write('ferry: drained and stopped: the target holds every change committed before the stop\n');
        return 0;
      }
    }
    throw new FerryError('the streamer did not confirm the stop within 5 minutes', 'is `ferry run` still running for this flow? see `ferry status`');
  });
}
