/**
 * End-of-run figures: a ProgressSink that only accumulates, a tee to feed it alongside the live display, and the
 * summary table printed after the bars are closed. The number formatting helpers live here too because the TTY bars
 * and the log lines must print the same units as the summary.
 */
import type { Phase, ProgressSink, TablePlan } from '../core/progress.js';

// ---------------------------------------------------------------------------------------------------------------
// Formatting (binary units: what `pg_size_pretty` and most DBA tools print, so figures can be compared)

const UNITS = ['KB', 'MB', 'GB', 'TB', 'PB'];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${Math.max(0, Math.round(Number.isFinite(n) ? n : 0))} B`;
  let v = n;
  let unit = 'B';
  for (const u of UNITS) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return `${v < 100 ? v.toFixed(1) : v.toFixed(0)} ${unit}`;
}

/** 1234567 -> "1,234,567" without Intl, so output never depends on the process locale. */
export function formatInt(n: number): string {
  const s = String(Math.round(Math.abs(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${s}` : s;
}

/** Compact count for narrow columns: 999, 1.23k, 12.3k, 123k, 1.23M. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '0';
  if (n < 1000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  let v = n;
  let unit = '';
  for (const u of units) {
    if (v < 1000) break;
    v /= 1000;
    unit = u;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${unit}`;
}

/** 4.2s under a minute (short runs are the common case in tests and demos), then m:ss, then h:mm:ss. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Collector

export interface TableStats {
  /** Source table key. */
  table: string;
  target: string;
  estimatedRows: number;
  /** Copied by this run. */
  rows: number;
  bytes: number;
  /** Already copied by an earlier run (resume): reported, but kept out of the rates. */
  resumedRows: number;
  resumedBytes: number;
  jobs: number;
  jobsDone: number;
  retries: number;
  /** When the table's last job finished; undefined while it is incomplete. */
  finishedAt?: number;
  lastEventAt?: number;
}

export class RunStats implements ProgressSink {
  private readonly byTable = new Map<string, TableStats>();
  private first?: number;
  private snapshotAt?: number;
  private ended?: number;
  private lastPhase: Phase | undefined;
  warnings = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The run starts at the first thing reported, not when the collector was built. */
  get startedAt(): number {
    return this.first ?? this.now();
  }

  get endedAt(): number | undefined {
    return this.ended;
  }

  get phaseNow(): Phase | undefined {
    return this.lastPhase;
  }

  tables(): TableStats[] {
    return [...this.byTable.values()];
  }

  /** Wall time of the run; still running when there is no end yet. */
  elapsedMs(): number {
    return (this.ended ?? this.now()) - this.startedAt;
  }

  /**
   * Jobs carry no "started" event, so a table's clock starts when the snapshot phase released the jobs and stops at its
   * last job: the time until that table was complete. Its rate is therefore a lower bound when jobs were queued.
   */
  tableElapsedMs(t: TableStats): number {
    const start = this.snapshotAt ?? this.startedAt;
    const end = t.finishedAt ?? t.lastEventAt ?? this.ended ?? this.now();
    return Math.max(0, end - start);
  }

  private touch(): number {
    const t = this.now();
    this.first ??= t;
    return t;
  }

  private entry(table: string): TableStats {
    let s = this.byTable.get(table);
    if (!s) {
      s = { table, target: table, estimatedRows: 0, rows: 0, bytes: 0, resumedRows: 0, resumedBytes: 0, jobs: 0, jobsDone: 0, retries: 0 };
      this.byTable.set(table, s);
    }
    return s;
  }

  phase(phase: Phase, _detail?: string): void {
    const t = this.touch();
    this.lastPhase = phase;
    if (phase === 'snapshot') this.snapshotAt ??= t;
    // Streaming can last until cutover; the summary is about getting there, so the clock stops when it begins.
    if (phase === 'streaming' || phase === 'done') this.ended ??= t;
  }

  planned(tables: TablePlan[]): void {
    this.touch();
    for (const p of tables) {
      const s = this.entry(p.table);
      s.target = p.target;
      s.estimatedRows = p.estimatedRows;
      s.jobs = p.jobs;
      s.jobsDone = p.doneJobs;
      s.resumedRows = p.doneRows;
      s.resumedBytes = p.doneBytes;
    }
  }

  copied(table: string, rows: number, bytes: number): void {
    const t = this.touch();
    const s = this.entry(table);
    s.rows += rows;
    s.bytes += bytes;
    s.lastEventAt = t;
  }

  jobDone(table: string, _jobId?: string): void {
    const t = this.touch();
    const s = this.entry(table);
    s.jobsDone++;
    s.lastEventAt = t;
    if (s.jobs > 0 && s.jobsDone >= s.jobs) s.finishedAt ??= t;
  }

  jobRetry(table: string, _jobId?: string, _label?: string, _error?: string, _attempt?: number): void {
    this.touch();
    this.entry(table).retries++;
  }

  warn(_message?: string): void {
    this.warnings++;
  }

  close(): void {
    this.ended ??= this.now();
  }
}

/** Feed several sinks from the one the core gets; a failing sink never disturbs the others or the core. */
export function teeProgress(...sinks: ProgressSink[]): ProgressSink {
  const each = (f: (s: ProgressSink) => void) => {
    for (const s of sinks) {
      try {
        f(s);
      } catch {
        // The ProgressSink contract is "must not throw": a display bug must not fail a migration.
      }
    }
  };
  return {
    phase: (p, d) => each((s) => s.phase(p, d)),
    planned: (t) => each((s) => s.planned(t)),
    copied: (t, r, b) => each((s) => s.copied(t, r, b)),
    jobDone: (t, j) => each((s) => s.jobDone(t, j)),
    jobRetry: (t, j, l, e, a) => each((s) => s.jobRetry(t, j, l, e, a)),
    warn: (m) => each((s) => s.warn(m)),
    close: () => each((s) => s.close()),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Summary table

export interface SummaryOptions {
  /** ANSI bold/green; leave off unless printing to a TTY. */
  color?: boolean;
}

const perSecond = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : 0);

export function formatSummary(stats: RunStats, opts: SummaryOptions = {}): string {
  const bold = (s: string) => (opts.color ? `\x1b[1m${s}\x1b[22m` : s);
  const green = (s: string) => (opts.color ? `\x1b[32m${s}\x1b[39m` : s);
  const tables = stats.tables().sort((a, b) => a.target.localeCompare(b.target, 'en'));
  const header = ['Table', 'Rows', 'Bytes', 'Jobs', 'Elapsed', 'Rows/s', 'MB/s'];
  const mbps = (bytes: number, ms: number) => (perSecond(bytes, ms) / (1024 * 1024)).toFixed(1);

  const rows: string[][] = tables.map((t) => {
    const ms = stats.tableElapsedMs(t);
    return [
      t.target,
      formatInt(t.rows),
      formatBytes(t.bytes),
      `${t.jobsDone}/${t.jobs}`,
      formatDuration(ms),
      formatInt(perSecond(t.rows, ms)),
      mbps(t.bytes, ms),
    ];
  });
  const sum = (f: (t: TableStats) => number) => tables.reduce((a, t) => a + f(t), 0);
  const totalMs = stats.elapsedMs();
  const totalRows = sum((t) => t.rows);
  const totalBytes = sum((t) => t.bytes);
  const total = [
    `Total (${tables.length} table${tables.length === 1 ? '' : 's'})`,
    formatInt(totalRows),
    formatBytes(totalBytes),
    `${sum((t) => t.jobsDone)}/${sum((t) => t.jobs)}`,
    formatDuration(totalMs),
    formatInt(perSecond(totalRows, totalMs)),
    mbps(totalBytes, totalMs),
  ];

  // Widths from plain text: colour codes are added after padding so they never skew the alignment.
  const widths = header.map((h, i) => Math.max(h.length, total[i]!.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');

  const out = [bold(line(header)), rule];
  for (const [i, r] of rows.entries()) {
    const t = tables[i]!;
    const text = line(r);
    out.push(t.jobs > 0 && t.jobsDone >= t.jobs ? text : `${text}  (incomplete)`);
  }
  out.push(rule, bold(green(line(total))));

  const resumedRows = sum((t) => t.resumedRows);
  if (resumedRows > 0) {
    out.push(
      `Resumed: ${formatInt(resumedRows)} rows (${formatBytes(sum((t) => t.resumedBytes))}) were copied by an earlier run and are not in these figures.`,
    );
  }
  const retries = sum((t) => t.retries);
  if (retries > 0) out.push(`Retries: ${retries}`);
  if (stats.warnings > 0) out.push(`Warnings: ${stats.warnings}`);
  return out.join('\n');
}
