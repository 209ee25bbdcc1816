/**
 * The streamer's decisions as a pure state machine: source events and timer ticks in, actions out. No I/O, no
 * clock of its own (`now` comes with every input), so scripted event sequences test it without any database.
 *
 * The executor (streamer.ts) runs the actions on the target strictly in order, on one apply lane, and reports back
 * what the lane finished (`acknowledged`, `hookDone`). Rules the machine keeps:
 * - A source transaction is never split across target commits; target commits batch whole transactions by time
 *   (`batchMs`) or size (`commitChanges`).
 * - A transaction whose commit precedes the target's applied position is skipped (the target already has it).
 * - A heartbeat or keepalive position is confirmed only when nothing received is left uncommitted: not inside a
 *   source transaction, no open target batch, and (the lane being ordered) after every earlier commit.
 * - A hook runs in the open batch, before any later change; its result (tables, pauses) is in effect before the
 *   next event is decided (the executor waits for the hook, then calls `hookDone`).
 */
import type { Position } from '../model.js';
import type { Change, RelationInfo, StreamEvent } from '../ports/change-source.js';

export type StreamAction =
  /** Apply these changes in the open target batch (begin one if none is open). */
  /** `at`: the source position (begin) of the transaction of the first change, for errors that name it. */
  | { type: 'apply'; changes: Change[]; bytes: number; at?: Position }
  /** Commit the open batch at `position`, then checkpoint and acknowledge it. */
  | { type: 'commit'; position: Position; time: number; changes: number; transactions: number }
  /** Nothing is open: checkpoint and acknowledge `position` (a heartbeat, keepalive or skipped transaction). */
  | { type: 'advance'; position: Position; time: number }
  /** Run the hook for this event in the open batch (begin one if none is open); then call `hookDone`. */
  | { type: 'hook'; event: { kind: 'relation'; relation: RelationInfo } | { kind: 'message'; prefix: string; content: string; position: Position } }
  /** Drop the open batch (stop grace ran out inside a transaction). */
  | { type: 'rollback' }
  /** A change of a paused table was dropped (reported once per table). */
  | { type: 'paused'; table: string; reason: string }
  /** Wait for the lane to finish, then end the stream. */
  | { type: 'finish' };

export interface MachineConfig {
  /** Source table keys the streamer applies (others' changes are dropped). */
  tables: Iterable<string>;
  /** The target's applied position: transactions committed before it are skipped. */
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
}

export interface TickInput {
  now: number;
  /** The stop signal is raised. */
  stopping: boolean;
  /** A drain was asked for: end once everything up to here is acknowledged. */
  drainTo?: Position;
  /** Nothing waits in the apply lane. */
  laneIdle: boolean;
}

/** Approximate memory of a change: its values' lengths plus a per-column overhead. */
export function changeBytes(c: Change): number {
  if (c.op === 'truncate') return 64;
  let n = 64;
  const images = c.op === 'insert' ? [c.row] : c.op === 'delete' ? [c.old] : [c.row, c.old];
  for (const img of images) {
    if (!img) continue;
    for (const k in img) n += 32 + (img[k]?.length ?? 0);
  }
  return n;
}

export class StreamMachine {
  private readonly tables: Set<string>;
  private readonly paused = new Map<string, string>();
  private readonly reported = new Set<string>();
  private pending: Change[] = [];
  private pendingBytes = 0;
  private pendingAt: Position | undefined;
  private txnAt: Position | undefined;
  /** Changes (or hooks) are scheduled since the last scheduled commit. */
  private open = false;
  private openedAt = 0;
  private openChanges = 0;
  private openTxns = 0;
  /** The source time of the oldest transaction received and not yet scheduled for commit (for lag). */
  private oldestOpen: number | undefined;
  private lastCommit: { position: Position; time: number } | undefined;
  private inTxn = false;
  private skipping = false;
  private idle: { position: Position; time: number } | undefined;
  private scheduledAck: Position;
  private acked: Position;
  private stopSince: number | undefined;
  private finished = false;

  constructor(private readonly cfg: MachineConfig) {
    this.tables = new Set(cfg.tables);
    this.scheduledAck = cfg.start;
    this.acked = cfg.start;
  }

  /** The last position the lane acknowledged to the source. */
  get acknowledgedPosition(): Position {
    return this.acked;
  }

  /** Received but not yet scheduled for a target commit (inside a transaction or an open batch). */
  get openSince(): number | undefined {
    return this.oldestOpen;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  private later(a: Position, b: Position): boolean {
    return this.cfg.compare(a, b) > 0;
  }

  private markOpen(now: number): void {
    if (!this.open) {
      this.open = true;
      this.openedAt = now;
    }
  }

  private flush(out: StreamAction[]): void {
    if (this.pending.length === 0) return;
    out.push({ type: 'apply', changes: this.pending, bytes: this.pendingBytes, at: this.pendingAt });
    this.pending = [];
    this.pendingBytes = 0;
  }

  private commit(out: StreamAction[]): void {
    if (!this.open || !this.lastCommit) return;
    this.flush(out);
    const c = this.lastCommit;
    out.push({ type: 'commit', position: c.position, time: c.time, changes: this.openChanges, transactions: this.openTxns });
    this.scheduledAck = c.position;
    this.open = false;
    this.openChanges = 0;
    this.openTxns = 0;
    this.lastCommit = undefined;
    this.oldestOpen = undefined;
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

  event(e: StreamEvent, now: number): StreamAction[] {
    const out: StreamAction[] = [];
    if (this.finished) return out;
    switch (e.kind) {
      case 'begin':
        this.inTxn = true;
        this.txnAt = e.position;
        // The target already committed this transaction (its commit record is before the applied position).
        this.skipping = this.cfg.applied !== undefined && this.cfg.compare(e.position, this.cfg.applied) < 0;
        if (!this.skipping) this.oldestOpen ??= e.time;
        return out;
      case 'change': {
        if (this.skipping) return out;
        const change = this.keep(e.change, out);
        if (!change) return out;
        this.markOpen(now);
        if (this.pending.length === 0) this.pendingAt = this.txnAt;
        this.pending.push(change);
        this.pendingBytes += changeBytes(change);
        this.openChanges++;
        if (this.pending.length >= this.cfg.applyChunk || this.pendingBytes >= this.cfg.applyChunkBytes) this.flush(out);
        return out;
      }
      case 'commit': {
        this.inTxn = false;
        const skipped = this.skipping;
        this.skipping = false;
        if (!this.open) {
          // Nothing of ours in it (or already applied): the position may advance once nothing is open.
          this.idle = { position: e.position, time: e.time };
          this.oldestOpen = undefined;
          return out;
        }
        // (A skipped transaction can leave the batch open only through a hook: committing at its end is exact.)
        this.lastCommit = { position: e.position, time: e.time };
        if (!skipped) this.openTxns++;
        if (now - this.openedAt >= this.cfg.batchMs || this.openChanges >= this.cfg.commitChanges) this.commit(out);
        return out;
      }
      case 'heartbeat':
      case 'keepalive':
        // Inside a transaction a keepalive's position can be past the commit still being received: never use it.
        if (!this.inTxn) this.idle = { position: e.position, time: e.time };
        return out;
      case 'relation':
        // Even in a skipped transaction: the description holds for what comes after it.
        if (!this.cfg.hooks.relation) return out;
        this.flush(out);
        this.markOpen(now);
        out.push({ type: 'hook', event: { kind: 'relation', relation: e.relation } });
        return out;
      case 'message':
        if (!this.cfg.hooks.message || this.skipping) return out;
        this.flush(out);
        this.markOpen(now);
        if (!this.inTxn) {
          // Outside a transaction its position orders it: the batch may commit there (like a heartbeat's).
          this.lastCommit = { position: e.position, time: now };
        }
        out.push({ type: 'hook', event: { kind: 'message', prefix: e.prefix, content: e.content, position: e.position } });
        return out;
      case 'stream-start':
      case 'stream-stop':
      case 'stream-commit':
      case 'stream-abort':
        // Sources only send these when streaming of in-progress transactions was asked for (not yet).
        throw new Error(`streamed transactions are not supported yet (got ${e.kind})`);
    }
  }

  /** What a hook returned: tables the streamer now applies, and tables whose later changes are dropped. */
  hookDone(result: { tables?: string[]; pause?: { table: string; reason: string }[] }): void {
    for (const t of result.tables ?? []) this.tables.add(t);
    for (const p of result.pause ?? []) this.paused.set(p.table, p.reason);
  }

  /** The lane acknowledged `position` to the source. */
  acknowledged(position: Position): void {
    if (this.later(position, this.acked)) this.acked = position;
  }

  tick(t: TickInput): StreamAction[] {
    const out: StreamAction[] = [];
    if (this.finished) return out;
    if (this.open && this.lastCommit && !this.inTxn && t.now - this.openedAt >= this.cfg.batchMs) this.commit(out);
    if (!this.open && !this.inTxn && this.idle && this.later(this.idle.position, this.scheduledAck)) {
      const i = this.idle;
      this.scheduledAck = i.position;
      out.push({ type: 'advance', position: i.position, time: i.time });
    }
    this.idle = !this.open && !this.inTxn ? undefined : this.idle;
    if (t.drainTo !== undefined && !this.open && t.laneIdle && out.length === 0 && !this.later(t.drainTo, this.acked)) {
      return this.end(out);
    }
    if (t.stopping) {
      this.stopSince ??= t.now;
      if (!this.inTxn) {
        this.commit(out);
        return this.end(out);
      }
      if (t.now - this.stopSince > this.cfg.stopGraceMs) {
        // Mid-transaction for too long: drop the open batch; the checkpoint still marks where to resume.
        this.pending = [];
        this.pendingBytes = 0;
        out.push({ type: 'rollback' });
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
