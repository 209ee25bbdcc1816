/**
 * The dashboard's model: samples a flow from its state store about once a second (the same records `ferry status`
 * reads) and keeps a bounded history for the graphs, so a page opened late still sees the last hour.
 */
import { CDC_CHECKPOINT, CDC_LAG, CDC_LIVE, type LiveStatus } from '../core/cdc/streamer.js';
import type { LagInfo } from '../core/ports/change-source.js';
import type { JobCounts, StateStore } from '../core/ports/state-store.js';
import { describePosition, tokenLag, type ChangeStreamLag } from './mongo-stream-lag.js';
import { ACTIVITY_CHECKPOINT, RUN_ERROR_CHECKPOINT, type Activity, type RunError } from '../progress/activity.js';

export interface TableView {
  table: string;
  target: string;
  rows: number;
  estimatedRows: number;
  bytes: number;
  ranges: { total: number; done: number; running: number; failed: number; pending: number };
  /** Rows per second over the last samples. */
  rate: number;
  /** Seconds to go at that rate, when copying. */
  etaSeconds: number | null;
}

export interface Sample {
  /** Unix seconds (uPlot's x unit). */
  t: number;
  rowsPerSec: number;
  changesPerSec: number;
  lagSeconds: number | null;
  lagBytes: number | null;
  retainedBytes: number | null;
}

export interface DashboardState {
  flow: string;
  phase: string;
  /** When the flow was created (ms), for the elapsed clock. */
  createdAt: number | null;
  error: string | null;
  runError: RunError | null;
  now: number;
  tables: TableView[];
  totals: { rows: number; estimatedRows: number; bytes: number; rate: number; etaSeconds: number | null };
  streaming: {
    position: string | null;
    lagSeconds: number | null;
    slot: { active: boolean; lagBytes: number; retainedBytes: number } | null;
    /** A MongoDB source: resume token age, the source's cluster time and oplog window (mongo-stream-lag.ts). */
    changeStream: ChangeStreamLag | null;
    changes: number;
    transactions: number;
    reconnects: number;
  } | null;
  changes: Activity['tables'];
  warnings: Activity['warnings'];
  failedRanges: { table: string; label: string; error: string }[];
  history: Sample[];
}

export interface SamplerOptions {
  store: StateStore;
  flow: string;
  cdc: boolean;
  /** The slot's lag and retained WAL, read from the source (may fail: then shown as unknown). */
  slotLag?: () => Promise<LagInfo | undefined>;
  /** A MongoDB source's change stream lag for the applied checkpoint (default: the token's age alone). */
  streamLag?: (position: unknown) => Promise<ChangeStreamLag | undefined>;
  historySize?: number;
}

export class Sampler {
  private readonly history: Sample[] = [];
  private last?: { at: number; rows: Map<string, number>; changes: number };
  private rates = new Map<string, number>();
  private latest?: DashboardState;
  private timer?: NodeJS.Timeout;
  private running?: Promise<DashboardState>;

  constructor(private readonly opts: SamplerOptions) {}

  start(everyMs = 1000): this {
    this.timer ??= setInterval(() => void this.sample().catch(() => {}), everyMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The latest state, sampling once if none was taken yet. */
  async state(): Promise<DashboardState> {
    return this.latest ?? (await this.sample());
  }

  sample(): Promise<DashboardState> {
    this.running ??= this.take().finally(() => (this.running = undefined));
    return this.running;
  }

  private async take(): Promise<DashboardState> {
    const { store, flow: id } = this.opts;
    const now = Date.now();
    const [flow, counts, failed, activity, runError] = await Promise.all([
      store.getFlow(id),
      store.countJobs(id).catch(() => ({}) as Record<string, JobCounts>),
      store.listJobs(id, 'failed').catch(() => []),
      store.getCheckpoint(id, ACTIVITY_CHECKPOINT).catch(() => undefined) as Promise<Activity | undefined>,
      store.getCheckpoint(id, RUN_ERROR_CHECKPOINT).catch(() => undefined) as Promise<RunError | null | undefined>,
    ]);
    const targets = new Map((flow?.tables ?? []).map((t) => [`${t.source.schema}.${t.source.name}`, `${t.target.schema}.${t.target.name}`]));

    // Rates from the change since the previous sample, smoothed so one late chunk does not make the line jump.
    const dt = this.last ? (now - this.last.at) / 1000 : 0;
    const rowsNow = new Map(Object.entries(counts).map(([t, c]) => [t, c.rows]));
    if (this.last && dt > 0) {
      for (const [t, r] of rowsNow) {
        const inst = Math.max(0, (r - (this.last.rows.get(t) ?? r)) / dt);
        this.rates.set(t, 0.5 * inst + 0.5 * (this.rates.get(t) ?? inst));
      }
    }
    const tables: TableView[] = Object.entries(counts).map(([table, c]) => {
      const rate = this.rates.get(table) ?? 0;
      const copying = c.done < c.total;
      const remaining = Math.max(0, c.estimatedRows - c.rows);
      return {
        table,
        target: targets.get(table) ?? table,
        rows: c.rows,
        estimatedRows: Math.max(c.estimatedRows, c.rows),
        bytes: c.bytes,
        ranges: { total: c.total, done: c.done, running: c.running, failed: c.failed, pending: c.pending },
        rate: copying ? rate : 0,
        etaSeconds: copying && rate > 0 ? remaining / rate : null,
      };
    });
    const totalRate = tables.reduce((a, t) => a + t.rate, 0);
    const totalRows = tables.reduce((a, t) => a + t.rows, 0);
    const totalEst = tables.reduce((a, t) => a + t.estimatedRows, 0);

    let streaming: DashboardState['streaming'] = null;
    let reconnects = 0;
    let streamWarning: { at: number; message: string } | undefined;
    let changesPerSec = 0;
    const streamedChanges = activity?.streamed?.changes ?? 0;
    if (this.opts.cdc) {
      const [position, lag, slot] = await Promise.all([
        store.getCheckpoint(id, CDC_CHECKPOINT).catch(() => undefined),
        store.getCheckpoint(id, CDC_LAG).catch(() => undefined) as Promise<{ sourceTime: number; appliedAt: number } | undefined>,
        this.opts.slotLag?.().catch(() => undefined),
      ]);
      // As `ferry status` computes it: the last applied transaction's age, plus the time since when changes wait;
      // and the streamer's live record (lag from the oldest uncommitted change), grown when it goes stale.
      let lagSeconds = lag ? (lag.appliedAt - lag.sourceTime + (slot && (slot.lagBytes ?? 0) > 0 ? now - lag.appliedAt : 0)) / 1000 : null;
      const live = (await store.getCheckpoint(id, CDC_LIVE).catch(() => undefined)) as LiveStatus | undefined;
      if (live) {
        const stale = Math.max(0, now - live.at - 3000);
        lagSeconds = Math.max(lagSeconds ?? 0, (live.lagMs + (slot && (slot.lagBytes ?? 0) > 0 ? stale : 0)) / 1000);
        reconnects = live.reconnects;
        if (live.warning) streamWarning = live.warning;
      }
      const changeStream = (await (this.opts.streamLag ?? (async (p: unknown) => tokenLag(p)))(position).catch(() => undefined)) ?? null;
      streaming = {
        position: position === undefined || position === null ? null : describePosition(position),
        lagSeconds: lagSeconds === null ? null : Math.max(0, lagSeconds),
        // The source's position can trail what was confirmed by a few bytes (a heartbeat's end): never below 0.
        // The page's shape stays `{active, lagBytes, retainedBytes}` (LagInfo's fields are optional for other engines).
        slot: slot ? { active: slot.active, lagBytes: Math.max(0, slot.lagBytes ?? 0), retainedBytes: Math.max(0, slot.retained ?? 0) } : null,
        changeStream,
        changes: streamedChanges,
        transactions: activity?.streamed?.transactions ?? 0,
        reconnects,
      };
      if (this.last && dt > 0) changesPerSec = Math.max(0, (streamedChanges - this.last.changes) / dt);
    }
    this.last = { at: now, rows: rowsNow, changes: streamedChanges };

    this.history.push({
      t: now / 1000,
      rowsPerSec: Math.round(totalRate),
      changesPerSec: Math.round(changesPerSec),
      lagSeconds: streaming?.lagSeconds ?? null,
      lagBytes: streaming?.slot ? streaming.slot.lagBytes : null,
      retainedBytes: streaming?.slot?.retainedBytes ?? null,
    });
    if (this.history.length > (this.opts.historySize ?? 3600)) this.history.shift();

    this.latest = {
      flow: id,
      phase: flow?.phase ?? 'not started',
      createdAt: flow?.createdAt ?? null,
      error: flow?.error ?? null,
      runError: runError ?? null,
      now,
      tables,
      totals: {
        rows: totalRows,
        estimatedRows: totalEst,
        bytes: tables.reduce((a, t) => a + t.bytes, 0),
        rate: totalRate,
        etaSeconds: totalRate > 0 ? Math.max(0, totalEst - totalRows) / totalRate : null,
      },
      streaming,
      changes: activity?.tables ?? {},
      // The streamer's own last warning (a reconnect, say) joins the run's, once.
      warnings: [...(activity?.warnings ?? []), ...(streamWarning && !(activity?.warnings ?? []).some((w) => w.message === streamWarning!.message) ? [streamWarning] : [])].sort((a, b) => a.at - b.at),
      failedRanges: failed.map((j) => ({ table: j.table, label: j.label, error: j.error ?? 'failed' })),
      history: [...this.history],
    };
    return this.latest;
  }
}
