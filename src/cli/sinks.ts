import type { ProgressSink } from '../core/progress.js';
import type { KindCounts } from '../progress/activity.js';
import { createLogProgress } from '../progress/log-progress.js';
import { createLogger, redactUrl } from '../progress/logger.js';
import { createStreamReporter } from '../progress/stream-reporter.js';
import { createTtyProgress } from '../progress/tty-progress.js';
import { createTtyStreamView, type TtyStreamView } from '../progress/tty-stream.js';
import { formatSummary, RunStats, teeProgress } from '../progress/summary.js';

export interface Progress {
  sink: ProgressSink;
  stats: RunStats;
  /** Per-table change counts for the streaming view (set by whoever counts them). */
  setChangeCounts(fn: () => Record<string, { received: KindCounts; applied: KindCounts }>): void;
  /** A message for the user that keeps the live view intact (not during the snapshot's bars). */
  note(message: string): void;
  close(): void;
}

/**
 * Bars on a terminal, JSON lines elsewhere, and a stats collector for the summary. When streaming starts, the
 * snapshot's summary is printed and a streaming view takes over: on a terminal a live frame (clock, rates, lag,
 * changes per table), elsewhere a JSON line every few seconds. Warnings reach the screen or the log in every phase.
 */
export function progressFor(stream: NodeJS.WriteStream = process.stderr): Progress {
  const stats = new RunStats();
  const logger = stream.isTTY ? undefined : createLogger();
  const view = logger ? createLogProgress(logger) : createTtyProgress(stream);
  const tee = teeProgress(stats, view);
  const startedAt = Date.now();
  let counts: () => Record<string, { received: KindCounts; applied: KindCounts }> = () => ({});
  let streamView: TtyStreamView | undefined;
  let reporter: ReturnType<typeof createStreamReporter> | undefined;
  let summarized = false;
  const summarize = () => {
    if (summarized) return;
    summarized = true;
    process.stdout.write(`${formatSummary(stats)}\n`);
  };
  const sink: ProgressSink = {
    ...tee,
    phase(phase, detail) {
      if (streamView) {
        streamView.phase(phase);
        stats.phase(phase, detail);
        return;
      }
      tee.phase(phase, detail);
      if (phase === 'streaming' && !summarized) {
        if (logger) {
          reporter = createStreamReporter(stream, logger);
        } else {
          view.close(); // the bars' last frame stays, complete
          summarize();
          streamView = createTtyStreamView(stream, { startedAt, counts: () => counts() });
          return;
        }
        summarize();
      }
    },
    warn(message) {
      if (streamView) {
        stats.warn(message);
        streamView.warn(message);
      } else tee.warn(message);
    },
    streamed(info) {
      streamView?.streamed(info);
      reporter?.streamed(info);
    },
    close() {
      streamView?.close();
      reporter?.close();
      tee.close();
    },
  };
  return {
    sink,
    stats,
    setChangeCounts: (fn) => (counts = fn),
    note: (message) => {
      if (streamView) streamView.note(message);
      else if (logger) logger.info({ component: 'ferry' }, message);
      else stream.write(`${message}\n`);
    },
    close: () => {
      sink.close();
      summarize();
    },
  };
}
