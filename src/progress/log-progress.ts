/**
 * Progress as JSON log lines, for when stderr is not a terminal (CI, containers, Lambda): one line per event that
 * matters, and per-table progress throttled so a long copy neither floods the log nor goes silent.
 */
import type pino from 'pino';
import type { Phase, ProgressSink, TablePlan } from '../core/progress.js';
import { redactUrl } from './logger.js';

export interface LogProgressOptions {
  /** Minimum gap between two progress lines of one table. */
  intervalMs?: number;
  now?: () => number;
}

interface TableLog {
  target: string;
  estimatedRows: number;
  jobs: number;
  doneJobs: number;
  /** Totals including resumed work, so the figures match what the target holds. */
  rows: number;
  bytes: number;
  /** Copied by this run only: the rate must not count work an earlier run did. */
  runRows: number;
  runBytes: number;
  lastLogAt?: number;
  lastLogRows: number;
  lastLogBytes: number;
  done: boolean;
}

export function createLogProgress(logger: pino.Logger, opts: LogProgressOptions = {}): ProgressSink {
  const intervalMs = opts.intervalMs ?? 2000;
  const now = opts.now ?? Date.now;
  const log = logger.child({ component: 'progress' });
  const tables = new Map<string, TableLog>();
  let closed = false;

  const entry = (table: string): TableLog => {
    let t = tables.get(table);
    if (!t) {
      t = { target: table, estimatedRows: 0, jobs: 0, doneJobs: 0, rows: 0, bytes: 0, runRows: 0, runBytes: 0, lastLogRows: 0, lastLogBytes: 0, done: false };
      tables.set(table, t);
    }
    return t;
  };

  const percent = (t: TableLog): number => {
    if (t.done) return 100;
    // Estimates come from planner statistics and can be low: never claim completion before the jobs say so.
    const total = Math.max(t.estimatedRows, t.rows);
    return total > 0 ? Math.min(99, Math.floor((t.rows / total) * 100)) : 0;
  };

  const progressLine = (table: string, t: TableLog, at: number) => {
    const since = t.lastLogAt ?? at;
    const secs = (at - since) / 1000;
    log.info(
      {
        table,
        target: t.target,
        rows: t.rows,
        bytes: t.bytes,
        estimatedRows: t.estimatedRows,
        percent: percent(t),
        rowsPerSec: secs > 0 ? Math.round((t.runRows - t.lastLogRows) / secs) : undefined,
        bytesPerSec: secs > 0 ? Math.round((t.runBytes - t.lastLogBytes) / secs) : undefined,
        jobsDone: t.doneJobs,
        jobs: t.jobs,
      },
      'table progress',
    );
    t.lastLogAt = at;
    t.lastLogRows = t.runRows;
    t.lastLogBytes = t.runBytes;
  };

  // Never let a logging problem escape into the core (the sink contract says calls must not throw).
  const safe =
    <A extends unknown[]>(f: (...a: A) => void) =>
    (...a: A): void => {
      if (closed) return;
      try {
        f(...a);
      } catch {
        /* ignored on purpose */
      }
    };

  return {
    phase: safe((phase: Phase, detail?: string) => {
      log.info({ phase, detail }, `phase ${phase}`);
    }),

    planned: safe((plans: TablePlan[]) => {
      let rows = 0;
      let bytes = 0;
      let jobs = 0;
      for (const p of plans) {
        const t = entry(p.table);
        Object.assign(t, { target: p.target, estimatedRows: p.estimatedRows, jobs: p.jobs, doneJobs: p.doneJobs });
        t.rows = p.doneRows + t.runRows;
        t.bytes = p.doneBytes + t.runBytes;
        t.done = p.jobs > 0 && p.doneJobs >= p.jobs;
        rows += p.estimatedRows;
        bytes += p.estimatedBytes;
        jobs += p.jobs;
        log.info(
          {
            table: p.table,
            target: p.target,
            estimatedRows: p.estimatedRows,
            estimatedBytes: p.estimatedBytes,
            jobs: p.jobs,
            ...(p.doneJobs > 0 ? { resumedJobs: p.doneJobs, resumedRows: p.doneRows, resumedBytes: p.doneBytes } : {}),
          },
          'table planned',
        );
      }
      log.info({ tables: plans.length, estimatedRows: rows, estimatedBytes: bytes, jobs }, 'plan ready');
    }),

    copied: safe((table: string, rows: number, bytes: number) => {
      const at = now();
      const t = entry(table);
      t.rows += rows;
      t.bytes += bytes;
      t.runRows += rows;
      t.runBytes += bytes;
      // The first chunk starts the table's clock (its rows were produced before it, so they stay out of the rate);
      // the first line comes one interval later, so small tables only produce their "table done" line.
      if (t.lastLogAt === undefined) {
        t.lastLogAt = at;
        t.lastLogRows = t.runRows;
        t.lastLogBytes = t.runBytes;
      } else if (at - t.lastLogAt >= intervalMs) {
        progressLine(table, t, at);
      }
    }),

    jobDone: safe((table: string, jobId: string) => {
      const t = entry(table);
      t.doneJobs++;
      log.info({ table, job: jobId, jobsDone: t.doneJobs, jobs: t.jobs }, 'job done');
      if (!t.done && t.jobs > 0 && t.doneJobs >= t.jobs) {
        t.done = true;
        log.info({ table, target: t.target, rows: t.rows, bytes: t.bytes, jobs: t.jobs }, 'table done');
      }
    }),

    jobRetry: safe((table: string, jobId: string, label: string, error: string, attempt: number) => {
      log.warn({ table, job: jobId, label, attempt, error: redactUrl(error) }, `job retry: ${label}`);
    }),

    warn: safe((message: string) => {
      log.warn(redactUrl(message));
    }),

    close: safe(() => {
      // Unfinished tables get a last line so the log shows where each stopped (after an error, say).
      const at = now();
      for (const [table, t] of tables) if (!t.done && t.runRows > t.lastLogRows) progressLine(table, t, at);
      closed = true;
    }),
  };
}
