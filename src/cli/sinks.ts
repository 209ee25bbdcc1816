import type { ProgressSink } from '../core/progress.js';
import { createLogProgress } from '../progress/log-progress.js';
import { createLogger } from '../progress/logger.js';
import { createTtyProgress } from '../progress/tty-progress.js';
import { RunStats, teeProgress } from '../progress/summary.js';

/** Bars on a terminal, JSON lines elsewhere; always a stats collector for the final summary. */
export function progressFor(stream: NodeJS.WriteStream = process.stderr): { sink: ProgressSink; stats: RunStats } {
  const stats = new RunStats();
  const view = stream.isTTY ? createTtyProgress(stream) : createLogProgress(createLogger());
  return { sink: teeProgress(stats, view), stats };
}
