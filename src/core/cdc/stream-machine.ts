/**
 * The streamer's decisions as a pure state machine: source events and timer ticks in, actions out. No I/O, no
 * clock of its own (`now` comes with every input), so scripted event sequences test it without any database.
 *
 * The executor (streamer.ts) runs the actions on the target: each action names its batch (an apply lane's ordinary
 * batch, or the batch of one streamed transaction) and runs on that lane's queue, in order. Rules the machine keeps:
 * - A source transaction is never split across target commits of one lane; target commits batch whole transactions
 *   by time (`batchMs`), size (`commitChanges`), or at once when the source goes quiet (`sourceIdle`, adaptive:
 *   lag near native when idle, big groups when busy; a lane with a commit in flight keeps grouping).
 * - A transaction whose commit precedes the applied position of the lane of a table is skipped for that table.
 * - The acknowledged position moves over a prefix of the source stream only: every commit point before it is
 *   committed on the target (all lanes), and a heartbeat or keepalive counts only outside any transaction.
 * - `consistency: table` (lanes > 1): tables are routed to lanes by a hash; each lane commits whole source
 *   transactions (its part of them). A transaction is held until its commit, then handed to its lanes. One that
 *   outgrows the hold, or needs all tables at once (a hook, a truncate over several lanes or with cascade), is
 *   applied serially: every lane commits first, then the transaction runs on lane 0 and commits at its end.
 * - Streamed in-progress transactions (stream-machine-streams.ts) get a batch of their own, a savepoint per
 *   subtransaction, and commit at their commit point after every ordinary lane committed what preceded it.
 * - A hook runs before any later change; its result (tables, pauses) is in effect before the next event is decided
 *   (the executor waits for the hook, then calls `hookDone`).
 */
import type { Position } from '../model.js';
import type { Change, StreamEvent } from '../ports/change-source.js';
import { changeBytes, type BatchRef, type StreamAction } from './stream-actions.js';
import { Streams } from './stream-machine-streams.js';

export { changeBytes, type BatchRef, type HookEvent, type StreamAction } from './stream-actions.js';

export interface MachineConfig {
  /** Source table keys the streamer applies (others' changes are dropped). */
  tables: Iterable<string>;
  /** The target's applied position (of lane 0, which also commits serial and streamed transactions). */
  applied: Position | undefined;
  /** Where streaming starts (the checkpoint): what is already acknowledged. */
  start: Position;
  compare(a: Position, b: Position): number;
  batchMs: number;
  applyChunk: number;
  applyChunkBytes: number;
  commitChanges: number;
  stopGraceMs: number;
  hooks: { relation: boolean; message: boolean };
  /** Apply lanes (`consistency: table`); 1 (the default) applies whole source transactions in one lane. */
  lanes?: number;
  /** The lane of a table (only with lanes > 1); must stay the same for a table while a layout lasts. */
  laneOf?: (table: string) => number;
  /** Per lane, the applied position that lane's batches recorded (default: `applied` for every lane). */
  laneApplied?: (Position | undefined)[];
  /** Streamed transactions with a target batch of their own at once (more are held in memory). Default 4. */
  maxStreams?: number;
  /** Bytes a held streamed transaction may buffer before the stream fails with advice. Default 64 MiB. */
  maxHeldBytes?: number;
  /**
   * A quiet-source commit waits until this long after the lane's previous commit (default 0: no wait): caps a
   * lane's commit rate when tiny transactions arrive just apart enough to look quiet. With a gap set, it also grows
   * with the size of the lane's previous commit (1 ms per transaction, 1 ms per 20 changes, at most batchMs): a
   * stream above about 1000 transactions/s (or 20k changes/s) groups up to batchMs, a slower one commits at once.
   */
  minCommitGapMs?: number;
}

export interface TickInput {
  now: number;
  /** The stop signal is raised. */
  stopping: boolean;
  /** A drain was asked for: end once everything up to here is acknowledged. */
  drainTo?: Position;
  /** Nothing waits in any apply lane. */
  laneIdle: boolean;
  /** The source has nothing more queued (no events for a few ms): commit what is complete now. */
  sourceIdle?: boolean;
  /** Lanes with a target commit in flight: they keep grouping (their next commit follows this one). */
  committing?: number[];
}

/** A position of the source stream the acknowledgement may reach once the commits covering it are scheduled. */
export interface Point {
  position: Position;
  time: number;
  /** Lanes whose open batch holds part of it (not yet scheduled for commit). */
  waits: Set<number>;
  /** Commits that cover it. */
  ids: number[];
}

class Lane {
  pending: Change[] = [];
  pendingBytes = 0;
  pendingAt: Position | undefined;
  /** Changes (or hooks) are scheduled since the last scheduled commit. */
  open = false;
  openedAt = 0;
  changes = 0;
  txns = 0;
  /** The last complete transaction boundary in the open batch. */
  last: { position: Position; time: number } | undefined;
  /** When its last commit was scheduled, and how much it held (adaptive commit gap). */
  committedAt = -Infinity;
  lastTxns = 0;
  lastChanges = 0;
  points: Point[] = [];
  constructor(readonly index: number) {}
}

export class StreamMachine {
  private readonly tables: Set<string>;
  private readonly paused = new Map<string, string>();
  private readonly reported = new Set<string>();
  private readonly lanes: Lane[];
  private readonly thresholds: (Position | undefined)[];
  private readonly streams: Streams;
  private readonly points: Point[] = [];
  private nextId = 1;
  private txnAt: Position | undefined;
  private txnTime = 0;
  private inTxn = false;
  private skipAll = false;
  /** consistency table: the current transaction's changes, held until its commit, with their lanes. */
  private held: { lane: number; change: Change }[] = [];
  private heldBytes = 0;
  private readonly txnLanes = new Set<number>();
  /** consistency table: the current transaction runs on lane 0 alone (see the header). */
  private serial = false;
  private scheduledAck: Position;
  private acked: Position;
  private stopSince: number | undefined;
  private finished = false;
  /** The `now` of the input being decided. */
  private clock = 0;

  constructor(private readonly cfg: MachineConfig) {
    this.tables = new Set(cfg.tables);
    this.scheduledAck = cfg.start;
    this.acked = cfg.start;
    const n = Math.max(1, cfg.lanes ?? 1);
    this.lanes = Array.from({ length: n }, (_, i) => new Lane(i));
    this.thresholds = cfg.laneApplied ?? this.lanes.map(() => cfg.applied);
    this.streams = new Streams({
      maxStreams: cfg.maxStreams ?? 4,
      maxHeldBytes: cfg.maxHeldBytes ?? 64 << 20,
      applyChunk: cfg.applyChunk,
      applyChunkBytes: cfg.applyChunkBytes,
      keep: (c, out) => this.keep(c, out),
      alreadyApplied: (p) => this.thresholds[0] !== undefined && cfg.compare(p, this.thresholds[0]) <= 0,
    });
  }

  /** The last position the lanes acknowledged to the source. */
  get acknowledgedPosition(): Position {
    return this.acked;
  }

  /** The source time of the oldest transaction received and not yet scheduled for commit (for lag). */
  get openSince(): number | undefined {
    const waiting = this.points.find((p) => p.waits.size > 0)?.time;
    const current = this.inTxn && !this.skipAll ? this.txnTime : undefined;
    if (waiting === undefined) return current;
    return current === undefined ? waiting : Math.min(waiting, current);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Some lane holds complete transactions not yet scheduled for commit (a quiet tick could commit them). */
  get committable(): boolean {
    return this.lanes.some((l) => l.open && l.last !== undefined && !this.midTxn(l));
  }

  /** Streamed transactions open now (for tests and status). */
  get openStreams(): number {
    return this.streams.size;
  }

  private get multi(): boolean {
    return this.lanes.length > 1;
  }

  private later(a: Position, b: Position): boolean {
    return this.cfg.compare(a, b) > 0;
  }

  private route(table: string): number {
    if (!this.multi) return 0;
    const l = this.cfg.laneOf?.(table) ?? 0;
    return l >= 0 && l < this.lanes.length ? l : 0;
  }

  private skipFor(lane: number): boolean {
    const t = this.thresholds[lane];
    return this.txnAt !== undefined && t !== undefined && this.cfg.compare(this.txnAt, t) < 0;
  }

  private markOpen(lane: Lane, now: number): void {
    if (!lane.open) {
      lane.open = true;
      lane.openedAt = now;
    }
  }

  private flush(lane: Lane, out: StreamAction[]): void {
    if (lane.pending.length === 0) return;
    out.push({ type: 'apply', changes: lane.pending, bytes: lane.pendingBytes, at: lane.pendingAt, ...ref(lane.index) });
    lane.pending = [];
    lane.pendingBytes = 0;
  }

  private toLane(lane: Lane, change: Change, now: number, out: StreamAction[]): void {
    this.markOpen(lane, now);
    if (lane.pending.length === 0) lane.pendingAt = this.txnAt;
    lane.pending.push(change);
    lane.pendingBytes += changeBytes(change);
    lane.changes++;
    this.txnLanes.add(lane.index);
    if (lane.pending.length >= this.cfg.applyChunk || lane.pendingBytes >= this.cfg.applyChunkBytes) this.flush(lane, out);
  }

  /** Commit the lane's open batch at its last boundary (if it has one). */
  private commit(lane: Lane, out: StreamAction[]): void {
    if (!lane.open || !lane.last) return;
    this.flush(lane, out);
    const id = this.nextId++;
    const c = lane.last;
    const action: StreamAction = { type: 'commit', id, position: c.position, time: c.time, changes: lane.changes, transactions: lane.txns, ack: false, ...ref(lane.index) };
    out.push(action);
    for (const p of lane.points) {
      p.waits.delete(lane.index);
      p.ids.push(id);
    }
    lane.points = [];
    lane.lastTxns = lane.txns;
    lane.lastChanges = lane.changes;
    lane.open = false;
    lane.changes = 0;
    lane.txns = 0;
    lane.last = undefined;
    lane.committedAt = this.clock;
    this.pop(out, action);
  }

  /** Every lane commits what it holds at its last boundary (before a streamed block, a serial transaction, a stop). */
  private drain(out: StreamAction[]): void {
    for (const lane of this.lanes) this.commit(lane, out);
  }

  /** With several lanes: lanes meet here (see the `barrier` action). */
  private meet(out: StreamAction[]): void {
    if (this.multi && out.at(-1)?.type !== 'barrier') out.push({ type: 'barrier' });
  }

  /** A commit point of the stream (or an idle position); `lanes` hold part of it in their open batches. */
  private point(position: Position, time: number, lanes: Iterable<number>, ids: number[] = []): void {
    const waits = new Set(lanes);
    const last = this.points.at(-1);
    // Idle positions in a row (keepalives, filtered transactions): only the latest matters.
    if (waits.size === 0 && ids.length === 0 && last && last.waits.size === 0 && last.ids.length === 0) {
      if (this.later(position, last.position)) Object.assign(last, { position, time });
      return;
    }
    const p: Point = { position, time, waits, ids };
    this.points.push(p);
    for (const l of waits) this.lanes[l]!.points.push(p);
  }

  /**
   * Acknowledge the prefix of points whose commits are all scheduled: as part of `commit` when the prefix ends at
   * its position, else as an `advance` after the commits that cover it.
   */
  private pop(out: StreamAction[], commit?: Extract<StreamAction, { type: 'commit' }>): void {
    let last: Point | undefined;
    const ids = new Set<number>();
    while (this.points.length && this.points[0]!.waits.size === 0) {
      last = this.points.shift()!;
      for (const id of last.ids) ids.add(id);
    }
    if (!last || !this.later(last.position, this.scheduledAck)) return;
    this.scheduledAck = last.position;
    // One lane: commits run in order on its queue, so acknowledging right after this one is exact. Several lanes
    // complete out of order: the advance waits for every commit that covers the prefix.
    if (commit && !this.multi && this.cfg.compare(commit.position, last.position) === 0) {
      commit.ack = true;
      return;
    }
    const after = [...ids];
    out.push(after.length ? { type: 'advance', position: last.position, time: last.time, after } : { type: 'advance', position: last.position, time: last.time });
  }

  private keep(change: Change, out: StreamAction[]): Change | undefined {
    const drop = (t: string) => {
      const reason = this.paused.get(t);
      if (reason !== undefined && !this.reported.has(t)) {
        this.reported.add(t);
        out.push({ type: 'paused', table: t, reason });
      }
      return reason !== undefined || !this.tables.has(t);
    };
    if (change.op !== 'truncate') return drop(change.table) ? undefined : change;
    const tables = change.tables.filter((t) => !drop(t));
    if (tables.length === 0) return undefined;
    return tables.length === change.tables.length ? change : { ...change, tables };
  }

  /** consistency table: from here the current transaction runs on lane 0, after every lane committed. */
  private goSerial(now: number, out: StreamAction[]): void {
    if (!this.multi || this.serial) return;
    this.serial = true;
    this.drain(out);
    this.meet(out);
    const lane0 = this.lanes[0]!;
    for (const h of this.held) this.toLane(lane0, h.change, now, out);
    this.held = [];
    this.heldBytes = 0;
  }

  /** A hook may touch any table (DDL): with several lanes, it runs on lane 0 after every lane committed. */
  private barrier(now: number, out: StreamAction[]): void {
    if (!this.multi) return;
    if (this.inTxn) this.goSerial(now, out);
    else {
      this.drain(out);
      this.meet(out);
    }
  }

  private ordinaryChange(change: Change, now: number, out: StreamAction[]): void {
    // Per lane, a restart skips what that lane's batches already committed.
    let c: Change | undefined = change;
    if (c.op === 'truncate') {
      const tables = c.tables.filter((t) => !this.skipFor(this.route(t)));
      c = tables.length === 0 ? undefined : tables.length === c.tables.length ? c : { ...c, tables };
    } else if (this.skipFor(this.route(c.table))) c = undefined;
    if (!c) return;
    if (!this.multi || this.serial) {
      this.toLane(this.lanes[0]!, c, now, out);
      return;
    }
    if (c.op === 'truncate') {
      const lanes = new Set(c.tables.map((t) => this.route(t)));
      // TRUNCATE checks foreign keys between the tables it empties: they must go in one statement, on one lane.
      if (lanes.size > 1 || c.cascade) {
        this.goSerial(now, out);
        this.toLane(this.lanes[0]!, c, now, out);
        return;
      }
    }
    const lane = c.op === 'truncate' ? this.route(c.tables[0]!) : this.route(c.table);
    this.held.push({ lane, change: c });
    this.heldBytes += changeBytes(c);
    if (this.held.length >= this.cfg.applyChunk || this.heldBytes >= this.cfg.applyChunkBytes) this.goSerial(now, out);
  }

  private ordinaryCommit(position: Position, time: number, now: number, out: StreamAction[]): void {
    this.inTxn = false;
    const skipped = this.skipAll;
    this.skipAll = false;
    if (!this.multi) {
      const lane = this.lanes[0]!;
      if (!lane.open) {
        this.point(position, time, []); // nothing of ours in it (or already applied): an idle position
        return;
      }
      // (A skipped transaction can leave the batch open only through a hook: committing at its end is exact.)
      lane.last = { position, time };
      if (!skipped) lane.txns++;
      this.point(position, time, [0]);
      if (now - lane.openedAt >= this.cfg.batchMs || lane.changes >= this.cfg.commitChanges) this.commit(lane, out);
      return;
    }
    for (const h of this.held) this.toLane(this.lanes[h.lane]!, h.change, now, out);
    this.held = [];
    this.heldBytes = 0;
    const touched = [...this.txnLanes].filter((l) => this.lanes[l]!.open);
    for (const l of touched) {
      const lane = this.lanes[l]!;
      lane.last = { position, time };
      if (!skipped) lane.txns++;
    }
    this.point(position, time, touched);
    for (const l of touched) {
      const lane = this.lanes[l]!;
      // A serial transaction commits at once: its locks span every lane's tables.
      if (this.serial || now - lane.openedAt >= this.cfg.batchMs || lane.changes >= this.cfg.commitChanges) this.commit(lane, out);
    }
    if (this.serial) this.meet(out); // later changes of any lane come after it
    this.serial = false;
    this.txnLanes.clear();
  }

  event(e: StreamEvent, now: number): StreamAction[] {
    const out: StreamAction[] = [];
    if (this.finished) return out;
    this.clock = now;
    if (this.streams.inBlock && (e.kind === 'change' || e.kind === 'relation' || e.kind === 'message' || e.kind === 'stream-stop')) {
      return this.streams.blockEvent(e, out, this.cfg.hooks);
    }
    switch (e.kind) {
      case 'begin':
        this.inTxn = true;
        this.txnAt = e.position;
        this.txnTime = e.time;
        this.txnLanes.clear();
        this.serial = false;
        // Every lane already committed this transaction (its commit record is before each lane's applied position).
        this.skipAll = this.lanes.every((l) => this.skipFor(l.index));
        return out;
      case 'change': {
        if (this.skipAll) return out;
        const change = this.keep(e.change, out);
        if (change) this.ordinaryChange(change, now, out);
        return out;
      }
      case 'commit':
        this.ordinaryCommit(e.position, e.time, now, out);
        return out;
      case 'heartbeat':
      case 'keepalive':
        // Inside a transaction a keepalive's position can be past the commit still being received: never use it.
        // (Nor inside a streamed block, where nothing orders it against the block.)
        if (!this.inTxn && !this.streams.inBlock) this.point(e.position, e.time, []);
        return out;
      case 'relation': {
        // Even in a skipped transaction: the description holds for what comes after it.
        if (!this.cfg.hooks.relation) return out;
        this.barrier(now, out);
        const lane0 = this.lanes[0]!;
        this.flush(lane0, out);
        this.markOpen(lane0, now);
        if (this.inTxn) this.txnLanes.add(0);
        out.push({ type: 'hook', event: { kind: 'relation', relation: e.relation } });
        return out;
      }
      case 'message': {
        if (!this.cfg.hooks.message || this.skipAll) return out;
        this.barrier(now, out);
        const lane0 = this.lanes[0]!;
        this.flush(lane0, out);
        this.markOpen(lane0, now);
        out.push({ type: 'hook', event: { kind: 'message', prefix: e.prefix, content: e.content, position: e.position } });
        if (this.inTxn) {
          this.txnLanes.add(0);
        } else {
          // Outside a transaction its position orders it: the batch may commit there (like a heartbeat's).
          lane0.last = { position: e.position, time: now };
          this.point(e.position, now, [0]);
          if (this.multi) {
            this.commit(lane0, out); // its locks may span every lane's tables
            this.meet(out);
          }
        }
        return out;
      }
      case 'stream-start':
        // Row locks of earlier source transactions must not block the streamed one: every lane commits first.
        this.drain(out);
        this.meet(out);
        this.streams.start(e.xid, e.first);
        return out;
      case 'stream-stop':
        return out;
      case 'stream-commit': {
        // Ordinary transactions received before this commit point committed earlier at the source. (The meeting
        // also keeps a held transaction promoted below from overtaking other lanes' earlier changes.)
        this.drain(out);
        this.meet(out);
        const id = this.nextId++;
        const commit = this.streams.commit(e.xid, e.position, e.time, id, out);
        this.point(e.position, e.time, [], commit ? [id] : []);
        this.pop(out, commit);
        this.meet(out); // later changes on other lanes come after it
        return out;
      }
      case 'stream-abort':
        this.meet(out); // a held transaction promoted here must not overtake earlier changes of other lanes
        this.streams.abort(e.xid, e.subxid, out);
        return out;
    }
  }

  /** What a hook returned: tables the streamer now applies, and tables whose later changes are dropped. */
  hookDone(result: { tables?: string[]; pause?: { table: string; reason: string }[] }): void {
    for (const t of result.tables ?? []) this.tables.add(t);
    for (const p of result.pause ?? []) this.paused.set(p.table, p.reason);
  }

  /** The executor acknowledged `position` to the source. */
  acknowledged(position: Position): void {
    if (this.later(position, this.acked)) this.acked = position;
  }

  /** A lane's batch holds part of the transaction being received (it cannot commit before that commit). */
  private midTxn(lane: Lane): boolean {
    return this.inTxn && (!this.multi || (this.serial && lane.index === 0));
  }

  tick(t: TickInput): StreamAction[] {
    const out: StreamAction[] = [];
    if (this.finished) return out;
    this.clock = t.now;
    const committing = new Set(t.committing ?? []);
    const floor = this.cfg.minCommitGapMs ?? 0;
    for (const lane of this.lanes) {
      if (!lane.open || !lane.last || this.midTxn(lane)) continue;
      const gap = floor > 0 ? Math.min(this.cfg.batchMs, Math.max(floor, lane.lastTxns, lane.lastChanges / 20)) : 0;
      const quiet = t.sourceIdle && !committing.has(lane.index) && t.now - lane.committedAt >= gap;
      if (t.now - lane.openedAt >= this.cfg.batchMs || quiet) this.commit(lane, out);
    }
    if (!this.inTxn) this.pop(out);
    const open = this.lanes.some((l) => l.open) || this.held.length > 0;
    if (t.drainTo !== undefined && !open && t.laneIdle && out.length === 0 && !this.later(t.drainTo, this.acked)) {
      return this.end(out);
    }
    if (t.stopping) {
      this.stopSince ??= t.now;
      if (!this.inTxn) {
        this.drain(out);
        this.streams.rollbackAll(out);
        return this.end(out);
      }
      if (t.now - this.stopSince > this.cfg.stopGraceMs) {
        // Mid-transaction for too long: drop what holds part of it; lanes at a boundary still commit. The
        // checkpoint marks where to resume.
        this.held = [];
        this.heldBytes = 0;
        for (const lane of this.lanes) {
          if (this.midTxn(lane)) {
            lane.pending = [];
            lane.pendingBytes = 0;
            lane.open = false;
            out.push({ type: 'rollback', ...ref(lane.index) });
          } else this.commit(lane, out);
        }
        this.streams.rollbackAll(out);
        return this.end(out);
      }
    }
    return out;
  }

  private end(out: StreamAction[]): StreamAction[] {
    this.finished = true;
    out.push({ type: 'finish' });
    return out;
  }
}

/** Lane 0 is the default batch: its actions carry no ref (keeps single-lane actions as they always were). */
function ref(lane: number): BatchRef {
  return lane === 0 ? {} : { lane };
}
