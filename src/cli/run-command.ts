import { loadConfigFile } from '../config/load.js';
import { FerryError } from '../core/errors.js';
import { formatSummary } from '../progress/summary.js';
import { runSnapshot } from '../runtime/local/run-snapshot.js';
import { reportError } from './report-error.js';
import { progressFor } from './sinks.js';

export async function runCommand(path: string): Promise<number> {
  const config = await loadConfigFile(path);
  if (config.mode !== 'snapshot') {
    throw new FerryError(`mode \`${config.mode}\` is not available yet in this version`, 'use `mode: snapshot`');
  }
  const { sink, stats } = progressFor();
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(130); // second signal: leave now; state is consistent anyway
    process.stderr.write(`\nferry: ${sig}: finishing the chunks in flight, then stopping (again to quit at once)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runSnapshot({ config, progress: sink, signal: stop.signal });
    sink.close();
    process.stdout.write(`${formatSummary(stats)}\n`);
    if (result.interrupted) {
      process.stderr.write(`ferry: stopped; run the same command again to resume flow ${result.flow}\n`);
      return 130;
    }
    return 0;
  } catch (err) {
    sink.close();
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
