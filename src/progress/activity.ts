/**
 * What a running flow did lately, kept in the state store so that any process (`ferry ui`, `ferry status`) can show
 * it: recent warnings, streaming totals, and changes per table by kind, as received from the source and as
 * committed on the target. Written as one checkpoint (`activity`) about once a second; bounded in size.
 *
 * The counts come from decorators around the change source and target, so the streamer itself is unchanged:
 * `received` counts every change event the source delivered (a replay after a restart counts again), `applied`
 * counts changes whose target transaction committed.
 */
import type { Json } from '../core/model.js';
import type { Change, ChangeSource } from '../core/ports/change-source.js';
import type { ChangeTarget } from '../core/ports/change-target.js';
import type { StateStore } from '../core/ports/state-store.js';
import type { ProgressSink } from '../core/progress.js';

export const ACTIVITY_CHECKPOINT = 'activity';
/** Why the last `ferry run` of the flow failed (null once a run starts again). */
export const RUN_ERROR_CHECKPOINT = 'run-error';

export type Kind = 'insert' | 'update' | 'delete' | 'truncate';
export type KindCounts = Record<Kind, number>;

export interface Activity {
  updatedAt: number;
  warnings: { at: number; message: string }[];
  streamed: { changes: number; transactions: number; lagMs: number; position: string; at: number } | null;
  tables: Record<string, { received: KindCounts; applied: KindCounts }>;
}

export interface RunError {
  at: number;
  phase: string;
  message: string;
  hint?: string;
}

const MAX_WARNINGS = 20;
const MAX_TABLES = 500;
const zero = (): KindCounts => ({ insert: 0, update: 0, delete: 0, truncate: 0 });

export class ActivityRecorder {
  private readonly activity: Activity = { updatedAt: Date.now(), warnings: [], streamed: null, tables: {} };
  private timer?: NodeJS.Timeout;
  private dirty = true;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: StateStore,
    private readonly flow: string,
    private readonly everyMs = 1000,
  ) {}

  start(): this {
    this.timer ??= setInterval(() => void this.flush(), this.everyMs);
    this.timer.unref();
    return this;
  }

  /** Changes per table so far (live, for the terminal view). */
  tables(): Activity['tables'] {
    return this.activity.tables;
  }

  warn(message: string): void {
    this.activity.warnings.push({ at: Date.now(), message });
    if (this.activity.warnings.length > MAX_WARNINGS) this.activity.warnings.shift();
    this.dirty = true;
  }

  streamed(info: { changes: number; transactions: number; lagMs: number; position: string }): void {
    const s = (this.activity.streamed ??= { changes: 0, transactions: 0, lagMs: 0, position: '', at: 0 });
    s.changes += info.changes;
    s.transactions += info.transactions;
    s.lagMs = info.lagMs;
    s.position = info.position;
    s.at = Date.now();
    this.dirty = true;
  }

  count(side: 'received' | 'applied', changes: Change[]): void {
    const m = new Map<string, KindCounts>();
    tally(m, changes);
    this.add(side, m);
  }

  /** Count a delivered batch in place: this runs for every change of the stream, so no array or map per batch. */
  private receivedEvents(events: readonly { kind: string; change?: Change }[]): void {
    let any = false;
    for (const e of events) {
      if (e.kind !== 'change' || !e.change) continue;
      const c = e.change;
      if (c.op === 'truncate') {
        for (const t of c.tables) this.bump(t, 'truncate');
      } else this.bump(c.table, c.op);
      any = true;
    }
    if (any) this.dirty = true;
  }

  private bump(table: string, op: Kind): void {
    let t = this.activity.tables[table];
    if (!t) {
      if (Object.keys(this.activity.tables).length >= MAX_TABLES) return;
      t = this.activity.tables[table] = { received: zero(), applied: zero() };
    }
    t.received[op]++;
  }

  private credit(applied: Map<string, KindCounts>): void {
    this.add('applied', applied);
  }

  private add(side: 'received' | 'applied', counts: Map<string, KindCounts>): void {
    for (const [table, k] of counts) {
      let t = this.activity.tables[table];
      if (!t) {
        if (Object.keys(this.activity.tables).length >= MAX_TABLES) continue;
        t = this.activity.tables[table] = { received: zero(), applied: zero() };
      }
      for (const op of Object.keys(k) as Kind[]) t[side][op] += k[op];
    }
    if (counts.size > 0) this.dirty = true;
  }

  /** A sink to tee beside the display: warnings and streaming totals. */
  sink(): ProgressSink {
    return {
      phase: () => {},
      planned: () => {},
      copied: () => {},
      jobDone: () => {},
      jobRetry: () => {},
      warn: (m) => this.warn(m),
      streamed: (i) => this.streamed(i),
      close: () => {},
    };
  }

  /** Count what flows through the streaming adapters, leaving their behaviour as it is. */
  instrument(cdc: { changes: ChangeSource; applier: ChangeTarget }): { changes: ChangeSource; applier: ChangeTarget } {
    const { changes: source, applier: target } = cdc;
    const changes = override(source, {
      stream: (flow, tables, from, onEvents, signal) =>
        source.stream(flow, tables, from, (events) => {
          this.receivedEvents(events);
          return onEvents(events);
        }, signal),
    });
    const applier = override(target, {
      begin: async (flow, tables) => {
        const batch = await target.begin(flow, tables);
        // Counted as they are applied, credited when the transaction commits. Only the counts are kept: holding
        // the changes themselves would defeat the streamer's memory bound in a million-row transaction.
        let open = new Map<string, KindCounts>();
        return override(batch, {
          apply: (cs, at) => {
            tally(open, cs);
            return batch.apply(cs, at);
          },
          commit: async (position) => {
            await batch.commit(position);
            this.credit(open);
            open = new Map();
          },
          rollback: async () => {
            open = new Map();
            await batch.rollback();
          },
        });
      },
    });
    return { changes, applier };
  }

  async flush(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    this.activity.updatedAt = Date.now();
    const snapshot = JSON.parse(JSON.stringify(this.activity)) as Json;
    // One write at a time, never thrown: the display must not fail the migration.
    this.writing = this.writing.then(() => this.store.putCheckpoint(this.flow, ACTIVITY_CHECKPOINT, snapshot)).catch(() => {});
    await this.writing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.dirty = true;
    await this.flush();
  }
}

function tally(into: Map<string, KindCounts>, changes: Change[]): void {
  for (const c of changes) {
    for (const table of c.op === 'truncate' ? c.tables : [c.table]) {
      let k = into.get(table);
      if (!k) into.set(table, (k = zero()));
      k[c.op]++;
    }
  }
}

/** The object with some methods replaced; every other member is the original's, bound to it (state stays there). */
function override<T extends object>(original: T, methods: Partial<T>): T {
  return new Proxy(original, {
    get(t, p) {
      if (Object.prototype.hasOwnProperty.call(methods, p)) return (methods as Record<PropertyKey, unknown>)[p];
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}
