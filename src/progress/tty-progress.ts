/**
 * Live progress bars on a terminal. The frame (a header plus one line per table) is redrawn in place from a timer,
 * at most ~10 times a second, as a single write: cursor up over the previous frame, clear each line, draw, clear
 * below. Events only update counters, so a burst of thousands of chunks costs nothing on screen.
 */
import type { Phase, ProgressSink, TablePlan } from '../core/progress.js';
import { redactUrl } from './logger.js';
import { formatBytes, formatCount, formatDuration } from './summary.js';

export interface TtyProgressOptions {
  /** ANSI colours; by default when the stream says it supports them and NO_COLOR is unset. */
  color?: boolean;
}

const FRAME_MS = 100;
/** Rolling rate window: long enough to smooth chunk bursts, short enough to follow a slowdown. */
const RATE_WINDOW_MS = 5000;
const MAX_NAME = 40;
const ESC = '\x1b[';

interface Row {
  table: string;
  target: string;
  order: number;
  estimatedRows: number;
  jobs: number;
  doneJobs: number;
  planned: boolean;
  /** Including work resumed from an earlier run. */
  rows: number;
  bytes: number;
  /** Copied by this run (resumed work excluded). */
  runRows: number;
  runBytes: number;
  /** This run's recent chunks as [time, rows], trimmed to the rate window. */
  samples: Array<[number, number]>;
  lastActivity: number;
  retries: number;
  /** Rate frozen when the table completed, so done lines keep a meaningful figure. */
  finalRate?: number;
}

export function createTtyProgress(stream: NodeJS.WriteStream, opts: TtyProgressOptions = {}): ProgressSink {
  const color =
    opts.color ?? (!process.env.NO_COLOR && typeof stream.hasColors === 'function' && stream.hasColors());
  const paint = (code: string, s: string) => (color ? `${ESC}${code}m${s}${ESC}0m` : s);

  const rows = new Map<string, Row>();
  let phase: Phase | undefined;
  let detail: string | undefined;
  const createdAt = Date.now();
  /** Rates are measured from when jobs were released (or the first event): before that nothing can be copied. */
  let rateOrigin: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let drawnLines = 0;
  let lastFrame = '';
  let closed = false;

  const row = (table: string): Row => {
    let r = rows.get(table);
    if (!r) {
      r = { table, target: table, order: rows.size, estimatedRows: 0, jobs: 0, doneJobs: 0, planned: false, rows: 0, bytes: 0, runRows: 0, runBytes: 0, samples: [], lastActivity: 0, retries: 0 };
      rows.set(table, r);
    }
    return r;
  };

  const isDone = (r: Row) => r.planned && r.doneJobs >= r.jobs;

  const rateOf = (r: Row, now: number): number => {
    if (r.finalRate !== undefined) return r.finalRate;
    const from = Math.max(now - RATE_WINDOW_MS, rateOrigin ?? now);
    while (r.samples.length > 0 && r.samples[0]![0] <= now - RATE_WINDOW_MS) r.samples.shift();
    const n = r.samples.reduce((a, [t, k]) => (t > from ? a + k : a), 0);
    // Floor the span at 1 s: the first chunk's rows were produced before it arrived, not in the last few ms.
    const span = Math.max(now - from, 1000);
    return (n * 1000) / span;
  };

  /** The denominator: the estimate, grown when reality passes it, so the bar never reaches 100% early. */
  const totalOf = (r: Row): number => {
    if (isDone(r)) return r.rows;
    return r.rows >= r.estimatedRows ? Math.ceil(r.rows * 1.05) + 1 : r.estimatedRows;
  };

  const ratioOf = (r: Row): number => {
    if (isDone(r)) return 1;
    const total = totalOf(r);
    return total > 0 ? Math.min(0.99, Math.max(0, r.rows / total)) : 0;
  };

  const bar = (ratio: number, width: number): string => {
    const full = Math.round(ratio * width);
    return paint(ratio >= 1 ? '32' : '36', '█'.repeat(full)) + paint('2', '░'.repeat(width - full));
  };

  const etaOf = (remaining: number, rate: number): string =>
    rate > 0 && remaining > 0 ? `ETA ${formatDuration((remaining / rate) * 1000)}` : remaining > 0 ? 'ETA --' : '';

  /** Which tables get a line when they do not all fit: active first, then queued, then the most recently done. */
  const visibleRows = (all: Row[], room: number): { shown: Row[]; hiddenDone: number; hiddenQueued: number; hiddenActive: number } => {
    if (all.length <= room) return { shown: all, hiddenDone: 0, hiddenQueued: 0, hiddenActive: 0 };
    const slots = Math.max(1, room - 1);
    const active = all.filter((r) => !isDone(r) && r.rows > 0).sort((a, b) => b.lastActivity - a.lastActivity);
    const queued = all.filter((r) => !isDone(r) && r.rows === 0);
    const done = all.filter(isDone).sort((a, b) => b.lastActivity - a.lastActivity);
    const chosen = new Set([...active, ...queued, ...done].slice(0, slots));
    // Keep plan order on screen so lines do not jump around as activity shifts.
    const shown = all.filter((r) => chosen.has(r));
    const count = (xs: Row[]) => xs.filter((r) => !chosen.has(r)).length;
    return { shown, hiddenDone: count(done), hiddenQueued: count(queued), hiddenActive: count(active) };
  };

  const buildFrame = (): string[] => {
    const now = Date.now();
    const width = Math.max(20, (stream.columns || 80) - 1); // the last column would make some terminals wrap
    const height = Math.max(3, (stream.rows || 24) - 1);
    const all = [...rows.values()].sort((a, b) => a.order - b.order);

    const totalRows = all.reduce((a, r) => a + r.rows, 0);
    const totalEst = all.reduce((a, r) => a + totalOf(r), 0);
    const totalRate = all.reduce((a, r) => a + (isDone(r) ? 0 : rateOf(r, now)), 0);
    const allDone = all.length > 0 && all.every(isDone);
    const head = [
      paint('1', 'Ferry'),
      paint('1;36', phase ?? 'starting') + (detail ? ` ${detail}` : ''),
      formatDuration(now - createdAt),
    ];
    if (all.length > 0) {
      const done = all.filter(isDone).length;
      head.push(
        `${done}/${all.length} tables`,
        `${formatCount(totalRows)}/${formatCount(Math.max(totalEst, totalRows))} rows`,
        formatBytes(all.reduce((a, r) => a + r.bytes, 0)),
      );
      if (!allDone) head.push(`${formatCount(totalRate)} rows/s`, etaOf(totalEst - totalRows, totalRate));
    }
    const lines = [head.filter(Boolean).join('  ')];

    const { shown, hiddenDone, hiddenQueued, hiddenActive } = visibleRows(all, height - 1);
    const nameWidth = Math.min(MAX_NAME, Math.max(0, ...shown.map((r) => r.target.length)));
    const cells = shown.map((r) => {
      const done = isDone(r);
      const rate = rateOf(r, now);
      return {
        r,
        done,
        ratio: ratioOf(r),
        count: `${formatCount(r.rows)}/${formatCount(totalOf(r))}`,
        bytes: formatBytes(r.bytes),
        rate: r.runRows > 0 ? `${formatCount(rate)} rows/s` : '',
        tail: done ? paint('32', 'done') : r.rows > 0 ? etaOf(totalOf(r) - r.rows, rate) : 'queued',
      };
    });
    const w = (f: (c: (typeof cells)[number]) => string) => Math.max(0, ...cells.map((c) => f(c).length));
    const countW = w((c) => c.count);
    const bytesW = w((c) => c.bytes);
    const rateW = w((c) => c.rate);
    // Everything on a line but the bar: mark, name, pct, counts, bytes, rate, and room for "ETA 12:34" or "done".
    const fixed = 2 + nameWidth + 1 + 1 + 4 + 2 + countW + 5 + 2 + bytesW + 2 + rateW + 2 + 10;
    const barWidth = Math.max(8, Math.min(30, width - fixed));
    for (const c of cells) {
      const mark = c.done ? paint('32', '✓') : c.r.rows > 0 ? paint('36', '›') : ' ';
      const name = c.r.target.length > nameWidth ? `${c.r.target.slice(0, nameWidth - 1)}…` : c.r.target.padEnd(nameWidth);
      const pct = `${Math.floor(c.ratio * 100)}%`.padStart(4);
      const retries = c.r.retries > 0 ? `  ${paint('33', `↻${c.r.retries}`)}` : '';
      lines.push(
        `${mark} ${name} ${bar(c.ratio, barWidth)} ${pct}  ${c.count.padStart(countW)} rows  ${c.bytes.padStart(bytesW)}  ${c.rate.padStart(rateW)}  ${c.tail}${retries}`,
      );
    }
    const hidden = [
      hiddenDone > 0 ? `+${hiddenDone} done` : '',
      hiddenActive > 0 ? `+${hiddenActive} active` : '',
      hiddenQueued > 0 ? `+${hiddenQueued} queued` : '',
    ].filter(Boolean);
    if (hidden.length > 0) lines.push(paint('2', `  ${hidden.join(', ')}`));
    return lines.map((l) => fit(l, width, color));
  };

  const clearSequence = () => (drawnLines > 0 ? `\r${ESC}${drawnLines}A${ESC}J` : '');

  const draw = (force = false) => {
    let frame: string;
    try {
      frame = buildFrame().map((l) => `\r${ESC}2K${l}\n`).join('');
    } catch {
      return; // A rendering bug must never take the migration down.
    }
    if (!force && frame === lastFrame) return;
    const lines = frame.split('\n').length - 1;
    stream.write(`${drawnLines > 0 ? `\r${ESC}${drawnLines}A` : ''}${frame}${ESC}J`);
    drawnLines = lines;
    lastFrame = frame;
  };

  const start = () => {
    if (timer || closed) return;
    timer = setInterval(() => draw(), FRAME_MS);
    timer.unref(); // The bars must never keep the process alive.
  };

  /** Print a message above the bars: erase the frame, write the line (it scrolls up with the log), redraw. */
  const above = (text: string) => {
    stream.write(`${clearSequence()}${text}\n`);
    drawnLines = 0;
    lastFrame = '';
    draw(true);
  };

  const guard =
    <A extends unknown[]>(f: (...a: A) => void) =>
    (...a: A): void => {
      if (closed) return;
      try {
        f(...a);
        start();
      } catch {
        /* the sink contract: never throw into the core */
      }
    };

  return {
    phase: guard((p: Phase, d?: string) => {
      phase = p;
      detail = d;
      if (p === 'snapshot') rateOrigin ??= Date.now();
    }),

    planned: guard((plans: TablePlan[]) => {
      rateOrigin ??= Date.now();
      for (const p of plans) {
        const r = row(p.table);
        Object.assign(r, { target: p.target, estimatedRows: p.estimatedRows, jobs: p.jobs, doneJobs: p.doneJobs, planned: true });
        // Resumed work counts toward the bar but never toward the rate (it is not in the samples).
        r.rows = p.doneRows + r.runRows;
        r.bytes = p.doneBytes + r.runBytes;
      }
    }),

    copied: guard((table: string, n: number, bytes: number) => {
      const now = Date.now();
      rateOrigin ??= now;
      const r = row(table);
      r.rows += n;
      r.bytes += bytes;
      r.runRows += n;
      r.runBytes += bytes;
      r.samples.push([now, n]);
      r.lastActivity = now;
    }),

    jobDone: guard((table: string) => {
      const now = Date.now();
      const r = row(table);
      r.doneJobs++;
      r.lastActivity = now;
      if (isDone(r) && r.finalRate === undefined) r.finalRate = rateOf(r, now);
    }),

    jobRetry: guard((table: string, jobId: string, label: string, error: string, attempt: number) => {
      const r = row(table);
      r.retries++;
      const firstLine = redactUrl(error).split('\n')[0] ?? '';
      above(fit(paint('33', `↻ retry ${r.target} job ${jobId} (${label}, attempt ${attempt}): ${firstLine}`), (stream.columns || 80) - 1, color));
    }),

    warn: guard((message: string) => {
      above(paint('33', `⚠ ${redactUrl(message)}`));
    }),

    close: () => {
      if (closed) return;
      if (timer) clearInterval(timer);
      timer = undefined;
      draw(true);
      closed = true;
    },
  };
}

/**
 * Cut a line to `width` visible characters, ending it with "…". ANSI sequences take no room: they are kept without
 * being counted, and a reset is appended when colour is on since the cut may leave one open.
 */
export function fit(line: string, width: number, color = true): string {
  if (visibleLength(line) <= width) return line;
  let out = '';
  let visible = 0;
  for (const m of line.matchAll(/\x1b\[[0-9;?]*[A-Za-z]|./gsu)) {
    const tok = m[0];
    if (tok.startsWith('\x1b')) out += tok;
    else if (visible < width - 1) {
      out += tok;
      visible++;
    } else break;
  }
  return `${out}…${color ? `${ESC}0m` : ''}`;
}

function visibleLength(s: string): number {
  return [...s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')].length;
}
