import { loadConfigFile } from '../config/load.js';
import { runFlow } from '../runtime/local/run-flow.js';
import { reportError } from './report-error.js';
import { progressFor } from './sinks.js';

/**
 * `ferry run`: exit 0 when done (or when streaming stopped cleanly on a signal, checkpointed), 130 when a snapshot
 * was interrupted (run again to resume), 1 on error.
 */
export async function runCommand(path: string): Promise<number> {
  const config = await loadConfigFile(path);
  const progress = progressFor();
  const stop = new AbortController();
  let streaming = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(130); // second signal: leave now; state is consistent anyway
    process.stderr.write(
      streaming
        ? `\nferry: ${sig}: committing the changes applied so far, then stopping (again to quit at once)\n`
        : `\nferry: ${sig}: finishing the chunks in flight, then stopping (again to quit at once)\n`,
    );
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const sink = { ...progress.sink, phase: (p: Parameters<typeof progress.sink.phase>[0], d?: string) => {
    if (p === 'streaming') streaming = true;
    progress.sink.phase(p, d);
  } };
  try {
    const result = await runFlow({ config, progress: sink, signal: stop.signal });
    progress.close();
    if (result.interrupted && !streaming) {
      process.stderr.write(`ferry: stopped; run the same command again to resume flow ${result.flow}\n`);
      return 130;
    }
    if (streaming) process.stderr.write(`ferry: streaming stopped and checkpointed; \`ferry run\` resumes it\n`);
    return 0;
  } catch (err) {
    progress.close();
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
