/**
 * The terminal view while streaming: a frame redrawn in place every 250 ms (so the clock and the rates keep moving
 * even when nothing arrives) with the totals, the lag, and one line per table with its changes by kind. Messages
 * (warnings, "stopping…") are printed above the frame, which is then drawn again below them, so no stale frame is
 * ever left behind.
 */
import type { KindCounts } from './activity.js';
import { redactUrl } from './logger.js';
import { formatCount, formatDuration } from './summary.js';
import { fit } from './tty-progress.js';

export interface StreamInfo {
  changes: number;
  transactions: number;
  lagMs: number;
  position: string;
}

export interface TtyStreamView {
  streamed(info: StreamInfo): void;
  warn(message: string): void;
  /** A plain message above the frame. */
  note(message: string): void;
  phase(name: string): void;
  close(): void;
}

const FRAME_MS = 250;
const RATE_WINDOW_MS = 10_000;
const ESC = '\x1b[';

export function createTtyStreamView(
  stream: NodeJS.WriteStream,
  opts: { startedAt?: number; counts?: () => Record<string, { received: KindCounts; applied: KindCounts }>; color?: boolean; now?: () => number } = {},
): TtyStreamView {
  const now = opts.now ?? Date.now;
  const color = opts.color ?? (!process.env.NO_COLOR && typeof stream.hasColors === 'function' && stream.hasColors());
  const paint = (code: string, s: string) => (color ? `${ESC}${code}m${s}${ESC}0m` : s);
  const startedAt = opts.startedAt ?? now();
  const streamingSince = now();
  let changes = 0;
  let txns = 0;
  let lagMs: number | undefined;
  let lastApplied = 0;
  let position = '';
  let phase = 'streaming';
  let window: { at: number; changes: number }[] = [];
  let drawn = 0;
  let closed = false;

  const rate = (t: number) => {
    window = window.filter((w) => t - w.at < RATE_WINDOW_MS);
    const span = Math.max(1, Math.min(RATE_WINDOW_MS, t - streamingSince) / 1000);
    return window.reduce((n, w) => n + w.changes, 0) / span;
  };

  const frame = (): string[] => {
    const t = now();
    const width = Math.max(20, (stream.columns || 80) - 1);
    const height = Math.max(3, (stream.rows || 24) - 1);
    // Between commits the lag shown grows with the time since the last one: a frozen target must not look current.
    const lag = lagMs === undefined ? '--' : `${((lagMs + (t - lastApplied > 2000 ? t - lastApplied : 0)) / 1000).toFixed(2)} s`;
    const head = [
      paint('1', 'Ferry'),
      paint('1;36', phase),
      formatDuration(t - startedAt),
      `${formatCount(changes)} changes`,
      `${formatCount(txns)} txns`,
      `${formatCount(rate(t))}/s`,
      `lag ${lag}`,
      position ? paint('2', `at ${position}`) : '',
    ].filter(Boolean);
    const lines = [head.join('  ')];
    const counts = Object.entries(opts.counts?.() ?? {}).sort(([a], [b]) => a.localeCompare(b, 'en'));
    const nameW = Math.min(40, Math.max(0, ...counts.map(([n]) => n.length)));
    for (const [name, c] of counts.slice(0, height - 2)) {
      const a = c.applied;
      const pending = c.received.insert + c.received.update + c.received.delete - (a.insert + a.update + a.delete);
      lines.push(
        `  ${name.padEnd(nameW)}  ${paint('32', `+${formatCount(a.insert)}`.padStart(7))} ins  ${paint('36', `~${formatCount(a.update)}`.padStart(7))} upd  ${paint('31', `-${formatCount(a.delete)}`.padStart(7))} del` +
          (a.truncate ? `  ${a.truncate} truncate` : '') + (pending > 0 ? paint('2', `  (${formatCount(pending)} in flight)`) : ''),
      );
    }
    if (counts.length > height - 2) lines.push(paint('2', `  +${counts.length - (height - 2)} more tables`));
    return lines.map((l) => fit(l, width, color));
  };

  const clear = () => (drawn > 0 ? `\r${ESC}${drawn}A${ESC}J` : '');
  const draw = () => {
    if (closed) return;
    try {
      const lines = frame();
      stream.write(`${clear()}${lines.map((l) => `${ESC}2K${l}\n`).join('')}`);
      drawn = lines.length;
    } catch {
      /* a display bug must never take the migration down */
    }
  };
  /** Print a line where the frame was, then draw the frame again below it. */
  const above = (line: string) => {
    stream.write(`${closed ? '' : clear()}${line}\n`);
    drawn = 0;
    draw();
  };
  const timer = setInterval(draw, FRAME_MS);
  timer.unref();
  draw();

  return {
    streamed(i) {
      changes += i.changes;
      txns += i.transactions;
      lagMs = i.lagMs;
      lastApplied = now();
      position = i.position;
      window.push({ at: now(), changes: i.changes });
    },
    warn(message) {
      above(paint('33', `⚠ ${redactUrl(message)}`));
    },
    note(message) {
      above(message);
    },
    phase(name) {
      phase = name;
      draw();
    },
    close() {
      if (closed) return;
      clearInterval(timer);
      draw();
      closed = true;
    },
  };
}
