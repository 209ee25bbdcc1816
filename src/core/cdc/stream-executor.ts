/**
 * Runs the state machine's actions (stream-machine.ts) on the target: apply lanes, each strictly in order, one
 * operation at a time; the open target batches; commits; and the checkpoint and source acknowledgement, which
 * follow the target commits and never precede them.
 *
 * - One lane by default (consistency: transaction); with consistency: table, `lanes` lanes each with its own batch.
 *   Streamed in-progress transactions have a batch each, run on lane 0's queue.
 * - A lane's operation may wait for a row lock another lane's open batch holds, but only when that batch's commit
 *   is already queued (the machine commits every lane before a transaction that spans them), so waits always end.
 * - The target records the applied position in the same transaction as the changes (`commit(position)`), so a
 *   restart from an older checkpoint skips transactions the target already has.
 * - `perform` is synchronous unless an action must be awaited (a hook, whose result decides what follows; the end):
 *   the reader hands events over without a promise per hand-over in the common case.
 * - Any failure is recorded (`failure`) and ends the stream; nothing after the last commit is acknowledged.
 */
import type { Position, TableSchema } from '../model.js';
import type { Change, ChangeSource, RowImage } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';
import { Serial } from './serial.js';
import type { StreamMachine } from './stream-machine.js';
import type { BatchRef, StreamAction } from './stream-actions.js';
import type { StreamHooks } from './stream-hooks.js';
import { CDC_CHECKPOINT, CDC_LAG, type StreamerOptions } from './streamer-options.js';

export interface ExecutorDeps {
  source: ChangeSource;
  target: ChangeTarget;
  store: StateStore;
  hooks?: StreamHooks;
  machine: StreamMachine;
  opts: StreamerOptions;
  /** Source tables by key (hooks add to it). */
  tables: Map<string, TableSchema>;
  /** Per lane, the key its batches record their position under, and the position they recorded. */
  layout: { keys: string[]; applied: (Position | undefined)[] };
  compare(a: Position, b: Position): number;
  /** A target commit finished: what arrived meanwhile may commit now (group commit). */
  onCommitted(): void;
  /** The stream must end (a failure, or the machine finished). */
  end(): void;
}

interface LaneQueue {
  serial: Serial;
  ops: number;
  tail: Promise<void>;
  committing: number;
}

type CommitAction = Extract<StreamAction, { type: 'commit' }>;
const queueOf = (r: BatchRef) => (r.xid !== undefined ? 0 : (r.lane ?? 0));
const keyOf = (r: BatchRef) => (r.xid !== undefined ? `x${r.xid}` : `l${r.lane ?? 0}`);

export class StreamExecutor {
  failure: unknown;
  /** Bytes of changes scheduled on the lanes and not yet applied (the reader pauses the source above a bound). */
  backlog = 0;
  /** Source time of the last position confirmed (lag when nothing is pending). */
  confirmedTime: number | undefined;
  private readonly lanes: LaneQueue[];
  /** Open target batches: `l<lane>` for a lane's ordinary batch, `x<xid>` for a streamed transaction's. */
  private readonly batches = new Map<string, ApplyBatch>();
  /** Commits scheduled, by id: resolve once done (an advance waits for the ones covering its position). */
  private readonly commits = new Map<number, Promise<void>>();
  /** Source times of commits scheduled and not yet done (for lag). */
  private readonly inflight = new Map<number, number>();
  private unreported = { changes: 0, transactions: 0 };
  /** Per lane, the last position its batches committed (a clean end brings them all to the final position). */
  private readonly laneCommitted: (Position | undefined)[];
  private readonly acks = new Serial();
  private readonly committingLanes: number[] = [];
  private readonly fail = (err: unknown) => {
    this.failure ??= err;
    this.d.end();
  };

  constructor(private readonly d: ExecutorDeps) {
    const n = d.layout.keys.length;
    this.lanes = Array.from({ length: n }, () => ({ serial: new Serial(), ops: 0, tail: Promise.resolve(), committing: 0 }));
    this.laneCommitted = [...d.layout.applied];
  }

  /** Nothing waits in any apply lane. */
  get laneIdle(): boolean {
    for (const l of this.lanes) if (l.ops > 0) return false;
    return true;
  }

  /** Lanes with a target commit in flight (valid until the next call). */
  committing(): readonly number[] {
    const out = this.committingLanes;
    out.length = 0;
    for (let i = 0; i < this.lanes.length; i++) if (this.lanes[i]!.committing > 0) out.push(i);
    return out;
  }

  /** Source time of the oldest commit in flight. */
  oldestInflight(): number | undefined {
    let min: number | undefined;
    for (const t of this.inflight.values()) if (min === undefined || t < min) min = t;
    return min;
  }

  allLanes(): Promise<void> {
    return Promise.all(this.lanes.map((l) => l.tail)).then(() => {});
  }

  /** Everything scheduled is done, acknowledgements included (the stream's end). */
  async settle(): Promise<void> {
    await this.allLanes();
    await this.acks.run(async () => {});
  }

  /** After the end: roll back batches left open (a failure, or a stop mid-transaction). */
  async rollbackOpen(): Promise<void> {
    for (const b of this.batches.values()) await b.rollback().catch(() => {});
    this.batches.clear();
  }

  private schedule(lane: number, bytes: number, op: () => Promise<void>): Promise<void> {
    const l = this.lanes[lane]!;
    this.backlog += bytes;
    l.ops++;
    l.tail = l.serial.run(async () => {
      try {
        if (this.failure === undefined) await op();
      } catch (err) {
        this.fail(err);
      } finally {
        this.backlog -= bytes;
        l.ops--;
      }
    });
    return l.tail;
  }

  private async advance(position: Position, time: number): Promise<void> {
    const { store, source, machine, opts } = this.d;
    await store.putCheckpoint(opts.flow, CDC_CHECKPOINT, position);
    await source.acknowledge(position);
    machine.acknowledged(position);
    this.confirmedTime = time;
    const info = { position, sourceTime: time, appliedAt: Date.now(), ...this.unreported };
    this.unreported = { changes: 0, transactions: 0 };
    await store.putCheckpoint(opts.flow, CDC_LAG, { sourceTime: info.sourceTime, appliedAt: info.appliedAt });
    opts.onApplied?.(info);
  }

  /** The batch for `r`, begun on first use; a lane's batch records that lane's position, a streamed one lane 0's. */
  private async open(r: BatchRef): Promise<ApplyBatch> {
    const key = keyOf(r);
    let b = this.batches.get(key);
    if (!b) {
      b = await this.d.target.begin(this.d.layout.keys[r.xid !== undefined ? 0 : (r.lane ?? 0)]!, [...this.d.tables.values()]);
      this.batches.set(key, b);
    }
    return b;
  }

  /** Rows an update could not complete on the target: read them from the source now and upsert them. */
  private async completeMissing(b: ApplyBatch, missing: MissingRow[]): Promise<void> {
    const byTable = new Map<string, RowImage[]>();
    for (const m of missing) byTable.set(m.table, [...(byTable.get(m.table) ?? []), m.key]);
    for (const [table, keys] of byTable) {
      const schema = this.d.tables.get(table);
      if (schema) await b.upsert(table, await this.d.source.fetchRows(schema, keys));
    }
  }

  private async applyIn(b: ApplyBatch, changes: Change[], at?: Position): Promise<void> {
    const missing = await b.apply(changes, at);
    if (missing.length) await this.completeMissing(b, missing);
  }

  private async runHook(r: BatchRef, event: Extract<StreamAction, { type: 'hook' }>['event']): Promise<void> {
    const { hooks, tables, machine, opts } = this.d;
    const b = await this.open(r);
    const result =
      event.kind === 'relation'
        ? await hooks?.onRelation?.(event.relation, b)
        : await hooks?.onMessage?.({ prefix: event.prefix, content: event.content, position: event.position }, b);
    if (!result) return;
    for (const t of result.tables ?? []) tables.set(`${t.source.schema}.${t.source.name}`, t);
    // Every open batch (other lanes, streamed transactions) applies later changes with the new schemas.
    if (result.tables?.length) for (const ob of this.batches.values()) ob.updateTables?.([...tables.values()]);
    machine.hookDone({ tables: result.tables?.map((t) => `${t.source.schema}.${t.source.name}`), pause: result.pause });
    for (const p of result.pause ?? []) opts.warn?.(`table ${p.table} is paused (its changes are no longer applied): ${p.reason}`);
    if (result.changes?.length) await this.applyIn(b, result.changes);
  }

  private commit(a: CommitAction): void {
    const q = queueOf(a);
    const l = this.lanes[q]!;
    this.inflight.set(a.id, a.time);
    l.committing++;
    const done = this.schedule(q, 0, async () => {
      try {
        const key = keyOf(a);
        const b = this.batches.get(key);
        this.batches.delete(key);
        if (b) await b.commit(a.position);
        this.laneCommitted[a.xid !== undefined ? 0 : (a.lane ?? 0)] = a.position;
        this.unreported.changes += a.changes;
        this.unreported.transactions += a.transactions;
      } finally {
        l.committing--;
        this.inflight.delete(a.id);
        this.d.onCommitted();
      }
    });
    if (a.ack) {
      void this.acks.run(async () => {
        await done;
        if (this.failure === undefined) await this.advance(a.position, a.time);
      }).catch(this.fail);
    } else {
      this.commits.set(a.id, done);
      void done.then(() => this.commits.delete(a.id)); // an advance scheduled after it is done need not wait
    }
  }

  /**
   * Runs the machine's actions in order. Returns a promise only when an action must be awaited (a hook, the end);
   * the rest of `actions` is copied first, so the caller may reuse the array at once.
   */
  perform(actions: StreamAction[]): Promise<void> | undefined {
    for (let k = 0; k < actions.length; k++) {
      const a = actions[k]!;
      switch (a.type) {
        case 'apply':
          this.schedule(queueOf(a), a.bytes, async () => this.applyIn(await this.open(a), a.changes, a.at));
          break;
        case 'savepoint':
        case 'rollbackTo':
          this.schedule(queueOf(a), 0, async () => {
            const b = await this.open(a);
            if (!b.savepoint || !b.rollbackTo) throw new Error('the target cannot apply streamed transactions (its batches have no savepoints)');
            await (a.type === 'savepoint' ? b.savepoint(a.name) : b.rollbackTo(a.name));
          });
          break;
        case 'commit':
          this.commit(a);
          break;
        case 'advance': {
          const after = (a.after ?? []).map((id) => this.commits.get(id));
          for (const id of a.after ?? []) this.commits.delete(id);
          void this.acks.run(async () => {
            await Promise.all(after);
            if (this.failure === undefined) await this.advance(a.position, a.time);
          }).catch(this.fail);
          break;
        }
        case 'hook': {
          const rest = actions.slice(k + 1);
          return this.schedule(queueOf(a), 0, () => this.runHook(a, a.event)).then(() => this.perform(rest));
        }
        case 'rollback':
          this.schedule(queueOf(a), 0, async () => {
            const key = keyOf(a);
            const b = this.batches.get(key);
            this.batches.delete(key);
            await b?.rollback();
          });
          break;
        case 'barrier': {
          const before = Promise.all(this.lanes.map((l) => l.tail));
          for (let i = 0; i < this.lanes.length; i++) this.schedule(i, 0, () => before.then(() => {}));
          break;
        }
        case 'paused':
          this.d.opts.warn?.(`a change of paused table ${a.table} was dropped: ${a.reason}`);
          break;
        case 'finish': {
          const rest = actions.slice(k + 1);
          return this.finish().then(() => this.perform(rest));
        }
      }
    }
    return undefined;
  }

  private async finish(): Promise<void> {
    await this.settle();
    await this.evenLanes();
    this.d.end();
  }

  /**
   * A clean end with several lanes: lanes that committed less recently record the final position too (an empty
   * batch), so a restart under another layout starts every table exactly there.
   */
  private async evenLanes(): Promise<void> {
    const n = this.lanes.length;
    if (n === 1 || this.failure !== undefined) return;
    const at = this.d.machine.acknowledgedPosition;
    for (let k = 0; k < n; k++) {
      const p = this.laneCommitted[k];
      if (p !== undefined && this.d.compare(p, at) >= 0) continue;
      const b = await this.d.target.begin(this.d.layout.keys[k]!, [...this.d.tables.values()]);
      await b.commit(at);
    }
  }
}
