import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentProgress, type TablePlan } from '../src/core/progress.js';
import { createLogProgress } from '../src/progress/log-progress.js';
import { createLogger, redactUrl } from '../src/progress/logger.js';
import { formatBytes, formatDuration, formatSummary, RunStats, teeProgress } from '../src/progress/summary.js';
import { createTtyProgress, fit } from '../src/progress/tty-progress.js';

const plan = (table: string, p: Partial<TablePlan> = {}): TablePlan => ({
  table,
  target: table,
  estimatedRows: 1000,
  estimatedBytes: 100_000,
  jobs: 1,
  doneRows: 0,
  doneBytes: 0,
  doneJobs: 0,
  ...p,
});

/** A terminal stand-in: records every write and has the size a real TTY reports. */
class FakeTty extends Writable {
  writes: string[] = [];
  isTTY = true;
  constructor(
    public columns = 100,
    public rows = 24,
  ) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void) {
    this.writes.push(chunk.toString());
    cb();
  }
  asStream() {
    return this as unknown as NodeJS.WriteStream;
  }
  /** The visible lines of the last frame drawn (each frame is one write). */
  lastFrame(): string[] {
    const last = this.writes[this.writes.length - 1] ?? '';
    return last
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .split('\n')
      .map((l) => l.replace(/\r/g, ''))
      .filter((l) => l.length > 0);
  }
}

const percents = (lines: string[]) => lines.flatMap((l) => [...l.matchAll(/(\d+)%/g)].map((m) => Number(m[1])));

describe('formatting helpers', () => {
  it('prints human sizes and durations', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KB');
    expect(formatBytes(250 * 1024 * 1024)).toBe('250 MB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GB');
    expect(formatDuration(4200)).toBe('4.2s');
    expect(formatDuration(125_000)).toBe('2:05');
    expect(formatDuration(3_725_000)).toBe('1:02:05');
  });

  it('cuts lines to a width without counting colour codes', () => {
    expect(fit('abcdef', 10)).toBe('abcdef');
    expect(fit('abcdefghij', 5, false)).toBe('abcd…');
    const cut = fit('\x1b[32m✓✓✓✓✓✓\x1b[0m', 4);
    expect(cut.replace(/\x1b\[[0-9;]*m/g, '')).toBe('✓✓✓…');
  });
});

describe('RunStats and formatSummary', () => {
  it('accumulates per table and prints aligned figures whose totals add up', () => {
    let t = 1_000_000;
    const stats = new RunStats(() => t);
    stats.phase('snapshot');
    stats.planned([
      plan('public.a', { target: 'public.a' }),
      plan('public.b', { target: 'archive.b', jobs: 2 }),
      plan('public.c', { jobs: 2, doneJobs: 1, doneRows: 700, doneBytes: 7000 }),
    ]);
    t += 1000;
    stats.copied('public.a', 1000, 100_000);
    stats.jobDone('public.a', 'a-1');
    t += 1000;
    stats.copied('public.b', 1500, 2 * 1024 * 1024);
    stats.copied('public.b', 1000, 1024 * 1024);
    stats.jobRetry('public.b', 'b-2', 'copy', 'boom', 1);
    stats.jobDone('public.b', 'b-1');
    stats.jobDone('public.b', 'b-2');
    stats.copied('public.c', 300, 3000);
    stats.jobDone('public.c', 'c-2');
    t += 2000;
    stats.close();

    const tables = stats.tables();
    expect(tables.map((x) => x.rows)).toEqual([1000, 2500, 300]);
    expect(tables.find((x) => x.table === 'public.b')?.retries).toBe(1);
    expect(stats.elapsedMs()).toBe(4000);

    const out = formatSummary(stats);
    expect(out).not.toMatch(/\x1b/);
    const lines = out.split('\n');
    const row = (name: string) => lines.find((l) => l.startsWith(name)) ?? '';
    expect(row('archive.b')).toMatch(/2,500\s+3\.0 MB\s+2\/2\s+2\.0s\s+1,250\s+1\.5$/);
    expect(row('public.a')).toMatch(/1,000\s+97\.7 KB\s+1\/1\s+1\.0s\s+1,000/);
    // Total: 3,800 rows over 4 s; the 700 resumed rows are reported apart, not in the figures.
    expect(row('Total (3 tables)')).toMatch(/3,800\s+3\.1 MB\s+5\/5\s+4\.0s\s+950\s+0\.8$/);
    expect(out).toContain('Resumed: 700 rows');
    expect(out).toContain('Retries: 1');
    // Aligned: header, rule, rows and total all have the same width.
    const table = lines.slice(0, 7);
    expect(new Set(table.map((l) => l.length)).size).toBe(1);
    expect(formatSummary(stats, { color: true })).toMatch(/\x1b\[1m/);
  });

  it('tees events to every sink, even past one that throws', () => {
    const stats = new RunStats();
    const broken = {
      ...silentProgress,
      copied: () => {
        throw new Error('display bug');
      },
    };
    const sink = teeProgress(broken, stats);
    sink.planned([plan('s.t')]);
    expect(() => sink.copied('s.t', 5, 50)).not.toThrow();
    expect(stats.tables()[0]?.rows).toBe(5);
  });
});

describe('createTtyProgress', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('draws a header and one line per table, never past 100%, with ✓ on done tables', () => {
    const tty = new FakeTty(100);
    const sink = createTtyProgress(tty.asStream());
    sink.phase('snapshot');
    sink.planned([
      plan('s.big', { target: 't.big', jobs: 2 }),
      plan('s.low', { target: 't.low', estimatedRows: 100 }),
      plan('s.done', { target: 't.done', estimatedRows: 500 }),
      plan('s.resumed', { target: 't.resumed', jobs: 4, doneJobs: 2, doneRows: 400 }),
    ]);
    vi.advanceTimersByTime(1000);
    sink.copied('s.big', 300, 30_000);
    sink.copied('s.low', 250, 25_000); // the estimate was too low
    sink.copied('s.done', 480, 48_000); // and here too high
    sink.jobDone('s.done', 'd-1');
    vi.advanceTimersByTime(500);
    sink.close();

    const lines = tty.lastFrame();
    expect(lines[0]).toContain('snapshot');
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l.length).toBeLessThan(100);
    const line = (t: string) => lines.find((l) => l.includes(t)) ?? '';
    for (const t of ['t.big', 't.low', 't.done', 't.resumed']) expect(line(t)).not.toBe('');
    expect(Math.max(...percents(lines))).toBeLessThanOrEqual(100);
    expect(line('t.done')).toMatch(/^✓/);
    expect(line('t.done')).toContain('100%');
    expect(line('t.low')).not.toMatch(/^✓|100%/);
    expect(line('t.low')).toMatch(/250\/\d+ rows/);
    expect(line('t.big')).toContain('30%');
    expect(line('t.resumed')).toContain('40%');
    expect(line('t.resumed')).not.toContain('rows/s'); // nothing copied by this run yet
    expect(lines.join('\n')).not.toMatch(/ETA -\d/); // never a negative ETA
  });

  it('redraws in place at most ~10 times a second and stops at close', () => {
    const tty = new FakeTty();
    const sink = createTtyProgress(tty.asStream());
    sink.planned([plan('s.t', { estimatedRows: 1_000_000 })]);
    for (let i = 0; i < 1000; i++) {
      sink.copied('s.t', 100, 1000);
      vi.advanceTimersByTime(1);
    }
    expect(tty.writes.length).toBeGreaterThan(3);
    expect(tty.writes.length).toBeLessThanOrEqual(11);
    // Every frame after the first moves up over the previous one instead of scrolling.
    for (let i = 1; i < tty.writes.length; i++) {
      const previousLines = tty.writes[i - 1]!.split('\n').length - 1;
      expect(tty.writes[i]!.startsWith(`\r\x1b[${previousLines}A`)).toBe(true);
    }
    sink.close();
    const after = tty.writes.length;
    sink.copied('s.t', 1, 1);
    vi.advanceTimersByTime(5000);
    expect(tty.writes.length).toBe(after);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('measures the rate from this run only, not from resumed rows', () => {
    const tty = new FakeTty();
    const sink = createTtyProgress(tty.asStream());
    sink.phase('snapshot');
    sink.planned([plan('s.t', { estimatedRows: 2_000_000, jobs: 4, doneJobs: 2, doneRows: 1_000_000 })]);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(500);
      sink.copied('s.t', 1000, 10_000);
    }
    sink.close();
    const line = tty.lastFrame()[1]!;
    expect(line).toContain('2.00k rows/s');
    expect(line).toContain('50%');
    // 990,000 rows left at 2,000 rows/s.
    expect(line).toMatch(/ETA 8:15/);
  });

  it('shows the active tables and a "+N done" line when they do not fit', () => {
    const tty = new FakeTty(80, 10);
    const sink = createTtyProgress(tty.asStream());
    const names = Array.from({ length: 30 }, (_, i) => `s.t${String(i).padStart(2, '0')}`);
    sink.planned(names.map((n) => plan(n)));
    names.slice(0, 20).forEach((n) => {
      sink.copied(n, 1000, 1);
      sink.jobDone(n, 'j');
    });
    names.slice(20, 23).forEach((n) => sink.copied(n, 10, 1));
    sink.close();
    const lines = tty.lastFrame();
    expect(lines.length).toBeLessThanOrEqual(9);
    for (const n of names.slice(20, 23)) expect(lines.some((l) => l.includes(n))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/\+\d+ done/);
    expect(lines[0]).toContain('20/30 tables');
  });

  it('truncates to a narrow terminal and prints warnings above the bars', () => {
    const tty = new FakeTty(40);
    const sink = createTtyProgress(tty.asStream());
    sink.planned([plan('a_schema.a_rather_long_table_name_indeed')]);
    sink.copied('a_schema.a_rather_long_table_name_indeed', 10, 10);
    vi.advanceTimersByTime(200);
    sink.warn('slot lag is high for postgres://ferry:hunter2@db/app');
    sink.close();
    for (const l of tty.lastFrame()) expect([...l].length).toBeLessThanOrEqual(39);
    const all = tty.writes.join('');
    expect(all).toContain('⚠ slot lag is high');
    expect(all).not.toContain('hunter2');
  });
});

describe('logging', () => {
  const capture = () => {
    const lines: string[] = [];
    return { lines, destination: { write: (s: string) => void lines.push(s) }, json: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
  };

  it('redacts secrets by key anywhere in a logged object, and URLs in text', () => {
    const out = capture();
    const logger = createLogger({ destination: out.destination, level: 'info' });
    logger.info(
      {
        config: {
          source: { url: 'postgres://ferry:hunter2@db:5432/app', password: 'hunter2' },
          target: { connectionString: 'postgresql://ferry:pa55word@db2/app', host: 'db2' },
          aws: { credentials: { token: 'tok-abc', secret: 's3cr3t' } },
        },
      },
      'config loaded from postgres://x:inline-secret@h/db',
    );
    logger.error({ err: new Error('connect failed: postgres://u:errsecret@h/db') }, 'failed');
    const text = out.lines.join('');
    for (const s of ['hunter2', 'pa55word', 'tok-abc', 's3cr3t', 'inline-secret', 'errsecret']) expect(text).not.toContain(s);
    const [first, second] = out.json();
    const config = first!.config as Record<string, Record<string, unknown>>;
    expect(config.source!.url).toBe('postgres://ferry:***@db:5432/app');
    expect(config.source!.password).toBe('[Redacted]');
    expect(config.target!.host).toBe('db2');
    expect(first!.msg).toBe('config loaded from postgres://x:***@h/db');
    expect((second!.err as { message: string }).message).toContain('postgres://u:***@h/db');
  });

  it('takes its level from FERRY_LOG_LEVEL', () => {
    const saved = process.env.FERRY_LOG_LEVEL;
    try {
      process.env.FERRY_LOG_LEVEL = 'warn';
      const out = capture();
      const logger = createLogger({ destination: out.destination });
      logger.info('hidden');
      logger.warn('shown');
      expect(out.json().map((l) => l.msg)).toEqual(['shown']);
      process.env.FERRY_LOG_LEVEL = 'loud';
      expect(() => createLogger({ destination: out.destination })).toThrow(/FERRY_LOG_LEVEL/);
    } finally {
      if (saved === undefined) delete process.env.FERRY_LOG_LEVEL;
      else process.env.FERRY_LOG_LEVEL = saved;
    }
  });

  it('writes progress as parseable JSON lines, throttled per table, retries at warn', () => {
    const out = capture();
    let t = 0;
    const sink = createLogProgress(createLogger({ destination: out.destination, level: 'info' }), { now: () => t });
    sink.phase('snapshot', 'flow f1');
    sink.planned([plan('s.a', { jobs: 2, doneJobs: 1, doneRows: 500, doneBytes: 5000 }), plan('s.b')]);
    for (let i = 0; i < 50; i++) {
      t += 100; // 5 s of chunks: at most one line per 2 s
      sink.copied('s.a', 10, 100);
    }
    sink.jobRetry('s.a', 'a-2', 'copy', 'connection to postgres://u:hunter2@h/db lost', 2);
    sink.jobDone('s.a', 'a-2');
    sink.warn('table s.b has no primary key; token=abc123');
    sink.close();

    const lines = out.json();
    expect(lines.length).toBe(out.lines.length);
    expect(out.lines.join('')).not.toMatch(/hunter2|abc123/);
    const msgs = lines.map((l) => l.msg);
    expect(msgs.filter((m) => m === 'table planned')).toHaveLength(2);
    expect(msgs).toContain('phase snapshot');
    const progress = lines.filter((l) => l.msg === 'table progress');
    expect(progress).toHaveLength(2);
    // Rows include the resumed 500; the rate counts only this run's 10 rows per 100 ms.
    expect(progress[0]).toMatchObject({ table: 's.a', rows: 500 + 210, rowsPerSec: 100, percent: 71 });
    const retry = lines.find((l) => String(l.msg).startsWith('job retry'));
    expect(retry).toMatchObject({ level: 40, attempt: 2, job: 'a-2' });
    expect(lines.find((l) => l.msg === 'table done')).toMatchObject({ table: 's.a', rows: 1000 });
    expect(lines.find((l) => String(l.msg).startsWith('table s.b'))?.level).toBe(40);
  });
});

describe('redactUrl', () => {
  it('replaces only the password', () => {
    expect(redactUrl('postgres://user:pa55@host:5432/db')).toBe('postgres://user:***@host:5432/db');
    expect(redactUrl('postgres://user@host/db')).toBe('postgres://user@host/db');
    expect(redactUrl('postgres://host:5432/db?sslmode=require')).toBe('postgres://host:5432/db?sslmode=require');
    expect(redactUrl('postgresql://u:p@ss/w@host/db')).toBe('postgresql://u:***@host/db');
    expect(redactUrl('error: postgres://a:b@h/db refused')).toBe('error: postgres://a:***@h/db refused');
    expect(redactUrl("host=h password='sec ret' user=u")).toBe('host=h password=*** user=u');
    expect(redactUrl('postgres://h/db?user=u&password=x&sslpassword=y')).toBe('postgres://h/db?user=u&password=***&sslpassword=***');
  });
});
