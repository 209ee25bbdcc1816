/**
 * Streaming goes on until cutover, so it reports as a status line (terminal) or a periodic JSON line (logs):
 * changes and transactions applied, rate, and lag behind the source's commit time.
 */
import type pino from 'pino';
import { formatCount } from './summary.js';

export interface StreamReporter {
  streamed(info: { changes: number; transactions: number; lagMs: number; position: string }): void;
  close(): void;
}

export function createStreamReporter(stream: NodeJS.WriteStream, logger: pino.Logger | undefined): StreamReporter {
  let changes = 0;
  let txns = 0;
  let lagMs = 0;
  let position = '';
  let window: { at: number; changes: number }[] = [];
  const started = Date.now();
  const rate = () => {
    const now = Date.now();
    window = window.filter((w) => now - w.at < 10_000);
    const span = Math.max(1, (now - (window[0]?.at ?? started)) / 1000);
    return window.reduce((n, w) => n + w.changes, 0) / span;
  };
  const line = () =>
    `streaming: ${formatCount(changes)} changes in ${formatCount(txns)} transactions, ${formatCount(Math.round(rate()))}/s, lag ${(lagMs / 1000).toFixed(2)} s, at ${position}`;
  const timer = setInterval(() => {
    if (stream.isTTY) stream.write(`\r\x1b[2K${line().slice(0, (stream.columns ?? 120) - 1)}`);
    else logger?.info({ component: 'stream', changes, transactions: txns, rate: Math.round(rate()), lagMs, position }, 'streaming');
  }, stream.isTTY ? 1000 : 5000);
  timer.unref();
  return {
    streamed(i) {
      changes += i.changes;
      txns += i.transactions;
      lagMs = i.lagMs;
      position = i.position;
      window.push({ at: Date.now(), changes: i.changes });
    },
    close() {
      clearInterval(timer);
      if (stream.isTTY && changes + txns > 0) stream.write(`\r\x1b[2K${line()}\n`);
    },
  };
}
