/**
 * The streamer's decisions as a pure state machine: source events and timer ticks in, actions out. No I/O, no
 * clock of its own (`now` comes with every input), so scripted event sequences test it without any database.
 *
 * The executor (stream-executor.ts) runs the actions on the target: each action names its batch (an apply lane's
 * ordinary batch, or the batch of one streamed transaction) and runs on that lane's queue, in order. Rules the
 * machine keeps:
 * - A source transaction is never split across target commits of one lane; target commits batch whole transactions
 *   by time (`batchMs`), size (`commitChanges`), or at once when the source goes quiet (`sourceIdle`, adaptive:
 *   lag near native when idle, big groups when busy; a lane with a commit in flight keeps grouping).
 * - A transaction whose commit precedes the applied position of the lane of a table is skipped for that table.
 * - The acknowledged position moves over a prefix of the source stream only: every commit point before it is
 *   committed on the target (all lanes), and a heartbeat or keepalive counts only outside any transaction
 *   (commit-points.ts).
 * - One lane (`consistency: transaction`, the default) is the fast path: a change appends straight to lane 0's open
 *   batch and a commit moves that batch's boundary and its one commit point in place, so a small transaction costs
 *   no routing and no allocation beyond its changes.
 * - `consistency: table` (lanes > 1): tables are routed to lanes by a hash (stream-machine-tables.ts).
 * - Streamed in-progress transactions (stream-machine-streams.ts) get a batch of their own, a savepoint per
 *   subtransaction, and commit at their commit point after every ordinary lane committed what preceded it.
 * - A hook runs before any later change; its result (tables, pauses) is in effect before the next event is decided
 *   (the executor waits for the hook, then calls `hookDone`).
 */
import type { Position } from '../model.js';
import type { StreamEvent } from '../ports/change-source.js';
import type { StreamAction } from './stream-actions.js';
import { LANE_0, NO_LANES, type MachineConfig } from './stream-machine-core.js';
import type { Lane } from './stream-lane.js';
import { Streams } from './stream-machine-streams.js';
import { TableLanesMachine } from './stream-machine-tables.js';

export { changeBytes, type BatchRef, type HookEvent, type StreamAction } from './stream-actions.js';
export type { MachineConfig } from './stream-machine-core.js';
export type { Point } from './commit-points.js';

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
  committing?: readonly number[];
}

export class StreamMachine extends TableLanesMachine {
  private readonly streams: Streams;
  private stopSince: number | undefined;
  private finished = false;

  constructor(cfg: MachineConfig) {
    super(cfg);
    this.streams = new Streams({
      maxStreams: cfg.maxStreams ?? 4,
      maxHeldBytes: cfg.maxHeldBytes ?? 64 << 20,
      applyChunk: cfg.applyChunk,
      applyChunkBytes: cfg.applyChunkBytes,
      keep: (c, out) => this.keep(c, out),
      alreadyApplied: (p) => this.alreadyApplied(p),
    });
  }

  /** The last position the lanes acknowledged to the source. */
  get acknowledgedPosition(): Position {
    return this.acked;
  }

  /** The source time of the oldest transaction received and not yet scheduled for commit (for lag). */
  get openSince(): number | undefined {
    const waiting = this.points.oldestWaiting();
    const current = this.inTxn && !this.skipAll ? this.txnTime : undefined;
    if (waiting === undefined) return current;
    return current === undefined ? waiting : Math.min(waiting, current);
  }

  get isFinished(): boolean {
    return this.finished;
  }

  /** Some lane holds complete transactions not yet scheduled for commit (a quiet tick could commit them). */
  get committable(): boolean {
    for (const l of this.lanes) if (l.open && l.hasBoundary && !this.midTxn(l.index)) return true;
    return false;
  }

  /** Streamed transactions open now (for tests and status). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Decide one event; its actions are appended to `out` (the executor passes one array per hand-over). */
  event(e: StreamEvent, now: number, out: StreamAction[] = []): StreamAction[] {
    if (this.finished) return out;
    this.clock = now;
    if (this.streams.inBlock && (e.kind === 'change' || e.kind === 'relation' || e.kind === 'message' || e.kind === 'stream-stop')) {
      return this.streams.blockEvent(e, out, this.cfg.hooks);
    }
    switch (e.kind) {
      case 'begin':
        this.inTxn = true;
        this.txnTime = e.time;
        this.serial = false;
        if (this.multi) this.txnLanes.clear();
        // Every lane already committed this transaction (its commit record is before each lane's applied position).
        this.beginAt(e.position);
        return out;
      case 'change': {
        if (this.skipAll) return out;
        const change = this.keep(e.change, out);
        if (!change) return out;
        // One lane: skipAll already covers the restart threshold, straight into the open batch.
        if (this.multi) this.routeChange(change, now, out);
        else this.toLane(this.lane0, change, now, out);
        return out;
      }
      case 'commit': {
        this.inTxn = false;
        const skipped = this.skipAll;
        this.skipAll = false;
        if (this.multi) {
          this.commitRouted(e.position, e.time, skipped, now, out);
          return out;
        }
        const lane = this.lane0;
        if (!lane.open) {
          this.point(e.position, e.time, NO_LANES); // nothing of ours in it (or already applied): an idle position
          return out;
        }
        // (A skipped transaction can leave the batch open only through a hook: committing at its end is exact.)
        lane.boundary(e.position, e.time, !skipped);
        this.point(e.position, e.time, LANE_0);
        if (now - lane.openedAt >= this.cfg.batchMs || lane.changes >= this.cfg.commitChanges) this.commit(lane, out);
        return out;
      }
      case 'heartbeat':
      case 'keepalive':
        // Inside a transaction a keepalive's position can be past the commit still being received: never use it.
        // (Nor inside a streamed block, where nothing orders it against the block.)
        if (!this.inTxn && !this.streams.inBlock) this.point(e.position, e.time, NO_LANES);
        return out;
      case 'relation': {
        // Even in a skipped transaction: the description holds for what comes after it.
        if (!this.cfg.hooks.relation) return out;
        this.barrier(now, out);
        this.lane0.flush(out);
        this.lane0.markOpen(now);
        if (this.inTxn) this.txnLanes.add(0);
        out.push({ type: 'hook', event: { kind: 'relation', relation: e.relation } });
        return out;
      }
      case 'message': {
        if (!this.cfg.hooks.message || this.skipAll) return out;
        this.barrier(now, out);
        const lane0 = this.lane0;
        lane0.flush(out);
        lane0.markOpen(now);
        out.push({ type: 'hook', event: { kind: 'message', prefix: e.prefix, content: e.content, position: e.position } });
        if (this.inTxn) {
          this.txnLanes.add(0);
        } else {
          // Outside a transaction its position orders it: the batch may commit there (like a heartbeat's).
          lane0.boundary(e.position, now, false);
          this.point(e.position, now, LANE_0);
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
        this.point(e.position, e.time, NO_LANES, commit ? [id] : NO_LANES);
        this.points.pop(out, commit);
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

  /** How long after its previous commit a lane's next quiet commit may come (see `minCommitGapMs`). */
  private gap(lane: Lane): number {
    const floor = this.cfg.minCommitGapMs ?? 0;
    return floor > 0 ? Math.min(this.cfg.batchMs, Math.max(floor, lane.lastTxns, lane.lastChanges / 20)) : 0;
  }

  /**
   * The earliest time a tick could commit something (by batchMs, or a quiet source past the commit gap);
   * undefined when no lane holds a complete transaction. The executor sleeps until then instead of checking.
   */
  quietDue(): number | undefined {
    let due: number | undefined;
    for (const lane of this.lanes) {
      if (!lane.open || !lane.hasBoundary || this.midTxn(lane.index)) continue;
      const at = Math.min(lane.openedAt + this.cfg.batchMs, lane.committedAt + this.gap(lane));
      if (due === undefined || at < due) due = at;
    }
    return due;
  }

  tick(t: TickInput): StreamAction[] {
    const out: StreamAction[] = [];
    if (this.finished) return out;
    this.clock = t.now;
    let open = this.holding;
    for (const lane of this.lanes) {
      if (!lane.open || !lane.hasBoundary || this.midTxn(lane.index)) continue;
      const quiet = t.sourceIdle && !t.committing?.includes(lane.index) && t.now - lane.committedAt >= this.gap(lane);
      if (t.now - lane.openedAt >= this.cfg.batchMs || quiet) this.commit(lane, out);
    }
    if (!this.inTxn) this.points.pop(out);
    for (const lane of this.lanes) open ||= lane.open;
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
        this.dropHeld();
        for (const lane of this.lanes) {
          if (this.midTxn(lane.index)) {
            lane.discard();
            out.push({ type: 'rollback', ...lane.ref });
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
