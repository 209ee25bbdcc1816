import type { ProgressSink } from '../core/progress.js';
import { createLogProgress } from '../progress/log-progress.js';
import { createLogger, redactUrl } from '../progress/logger.js';
import { createStreamReporter } from '../progress/stream-reporter.js';
import { createTtyProgress } from '../progress/tty-progress.js';
import { formatSummary, RunStats, teeProgress } from '../progress/summary.js';

/**
 * Bars on a terminal, JSON lines elsewhere, and a stats collector for the summary. When streaming starts, the
 * snapshot's summary is printed and a streaming status line takes over.
 */
export function progressFor(stream: NodeJS.WriteStream = process.stderr): { sink: ProgressSink; stats: RunStats; close(): void } {
  const stats = new RunStats();
  const logger = stream.isTTY ? undefined : createLogger();
  const view = logger ? createLogProgress(logger) : createTtyProgress(stream);
  const reporter = createStreamReporter(stream, logger);
  const tee = teeProgress(stats, view);
  let summarized = false;
  const sink: ProgressSink = {
    ...tee,
    phase(phase, detail) {
      tee.phase(phase, detail);
      if (phase === 'streaming' && !summarized) {
        summarized = true;
        tee.close();
        process.stdout.write(`${formatSummary(stats)}\n`);
      }
    },
    streamed: (info) => reporter.streamed(info),
    // While streaming (the snapshot's view is closed) warnings and reconnects still reach the log or the terminal.
    warn(message) {
      if (!summarized) return tee.warn(message);
      if (logger) logger.warn({ component: 'stream' }, redactUrl(message));
      else stream.write(`\r\x1b[2K⚠ ${redactUrl(message)}\n`);
    },
    close() {
      reporter.close();
      tee.close();
    },
  };
  return {
    sink,
    stats,
    close: () => {
      sink.close();
      if (!summarized) process.stdout.write(`${formatSummary(stats)}\n`);
      summarized = true;
    },
  };
}
