/**
 * One apply lane's open target batch as the state machine sees it: the changes not yet handed to the executor
 * (`pending`, handed over in chunks of `applyChunk` changes or `applyChunkBytes`), the last complete transaction
 * boundary it may commit at, and what its previous commit held (the adaptive commit gap).
 *
 * Everything is updated in place: a one-row transaction appended to an open batch allocates nothing here beyond
 * the change itself (the pending array grows amortized).
 */
import type { Position } from '../model.js';
import type { Change } from '../ports/change-source.js';
import type { Point } from './commit-points.js';
import { changeBytes, type BatchRef, type StreamAction } from './stream-actions.js';

export class Lane {
  pending: Change[] = [];
  pendingBytes = 0;
  pendingAt: Position | undefined;
  /** Changes (or hooks) are scheduled since the last scheduled commit. */
  open = false;
  openedAt = 0;
  changes = 0;
  txns = 0;
  /** The last complete transaction boundary in the open batch (undefined: none yet). */
  lastPosition: Position | undefined;
  lastTime = 0;
  /** When its last commit was scheduled, and how much it held (adaptive commit gap). */
  committedAt = -Infinity;
  lastTxns = 0;
  lastChanges = 0;
  /** Commit points its open batch holds part of. */
  points: Point[] = [];
  /** What its actions carry: lane 0 carries none (single-lane actions are what they always were). */
  readonly ref: BatchRef;

  constructor(readonly index: number) {
    this.ref = index === 0 ? {} : { lane: index };
  }

  get hasBoundary(): boolean {
    return this.lastPosition !== undefined;
  }

  markOpen(now: number): void {
    if (!this.open) {
      this.open = true;
      this.openedAt = now;
    }
  }

  /** Hand the pending changes to the executor. */
  flush(out: StreamAction[]): void {
    if (this.pending.length === 0) return;
    out.push(this.index === 0
      ? { type: 'apply', changes: this.pending, bytes: this.pendingBytes, at: this.pendingAt }
      : { type: 'apply', changes: this.pending, bytes: this.pendingBytes, at: this.pendingAt, lane: this.index });
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Append a change of the transaction that began at `txnAt`; hand a full chunk over. */
  append(change: Change, txnAt: Position | undefined, now: number, chunk: number, chunkBytes: number, out: StreamAction[]): void {
    this.markOpen(now);
    if (this.pending.length === 0) this.pendingAt = txnAt;
    this.pending.push(change);
    this.pendingBytes += changeBytes(change);
    this.changes++;
    if (this.pending.length >= chunk || this.pendingBytes >= chunkBytes) this.flush(out);
  }

  /** A complete transaction boundary: the batch may commit here. */
  boundary(position: Position, time: number, counted: boolean): void {
    this.lastPosition = position;
    this.lastTime = time;
    if (counted) this.txns++;
  }

  /** The batch's commit was scheduled (the caller made the action): start afresh. */
  reset(now: number): void {
    this.points = [];
    this.lastTxns = this.txns;
    this.lastChanges = this.changes;
    this.open = false;
    this.changes = 0;
    this.txns = 0;
    this.lastPosition = undefined;
    this.committedAt = now;
  }

  /** Stop grace ran out mid-transaction: drop what the batch holds (the executor rolls it back). */
  discard(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.open = false;
  }
}
