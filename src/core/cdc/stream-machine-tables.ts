/**
 * `consistency: table` in the state machine: tables routed to `lanes` apply lanes by a hash, each lane committing
 * whole source transactions (its part of them). A transaction is held until its commit, then handed to its lanes.
 * One that outgrows the hold (`applyChunk` changes or `applyChunkBytes`), or needs every table at once (a hook, a
 * truncate over tables of several lanes or with cascade), runs serially: every lane commits first, the lanes meet,
 * the transaction runs on lane 0 and commits at its end, and the lanes meet again.
 *
 * With one lane (the default) none of this runs: stream-machine.ts appends straight to lane 0's batch.
 */
import type { Position } from '../model.js';
import type { Change } from '../ports/change-source.js';
import { changeBytes, type StreamAction } from './stream-actions.js';
import { MachineCore } from './stream-machine-core.js';

export class TableLanesMachine extends MachineCore {
  /** The current transaction's changes, held until its commit, with their lanes. */
  private held: { lane: number; change: Change }[] = [];
  private heldBytes = 0;
  /** Lanes the current transaction has touched. */
  protected readonly txnLanes = new Set<number>();
  /** The current transaction runs on lane 0 alone. */
  protected serial = false;

  protected get holding(): boolean {
    return this.held.length > 0;
  }

  /** Stop grace ran out mid-transaction: what is held is dropped. */
  protected dropHeld(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  /** Lane 0's batch holds part of the transaction being received (it cannot commit before that commit). */
  protected midTxn(laneIndex: number): boolean {
    return this.inTxn && (!this.multi || (this.serial && laneIndex === 0));
  }

  /** From here the current transaction runs on lane 0, after every lane committed. */
  protected goSerial(now: number, out: StreamAction[]): void {
    if (!this.multi || this.serial) return;
    this.serial = true;
    this.drain(out);
    this.meet(out);
    if (this.held.length) this.txnLanes.add(0);
    for (const h of this.held) this.toLane(this.lane0, h.change, now, out);
    this.dropHeld();
  }

  /** A hook may touch any table (DDL): with several lanes, it runs on lane 0 after every lane committed. */
  protected barrier(now: number, out: StreamAction[]): void {
    if (!this.multi) return;
    if (this.inTxn) this.goSerial(now, out);
    else {
      this.drain(out);
      this.meet(out);
    }
  }

  /** A change of the current transaction, with several lanes. */
  protected routeChange(change: Change, now: number, out: StreamAction[]): void {
    // Per lane, a restart skips what that lane's batches already committed.
    let c: Change | undefined = change;
    if (c.op === 'truncate') {
      const tables = c.tables.filter((t) => !this.skipFor(this.route(t)));
      c = tables.length === 0 ? undefined : tables.length === c.tables.length ? c : { ...c, tables };
    } else if (this.skipFor(this.route(c.table))) c = undefined;
    if (!c) return;
    if (this.serial) {
      this.toLane(this.lane0, c, now, out);
      this.txnLanes.add(0);
      return;
    }
    if (c.op === 'truncate') {
      const lanes = new Set(c.tables.map((t) => this.route(t)));
      // TRUNCATE checks foreign keys between the tables it empties: they must go in one statement, on one lane.
      if (lanes.size > 1 || c.cascade) {
        this.goSerial(now, out);
        this.toLane(this.lane0, c, now, out);
        this.txnLanes.add(0);
        return;
      }
    }
    const lane = c.op === 'truncate' ? this.route(c.tables[0]!) : this.route(c.table);
    this.held.push({ lane, change: c });
    this.heldBytes += changeBytes(c);
    if (this.held.length >= this.cfg.applyChunk || this.heldBytes >= this.cfg.applyChunkBytes) this.goSerial(now, out);
  }

  /** The current transaction's commit, with several lanes: its lanes get it, each commits by the usual rules. */
  protected commitRouted(position: Position, time: number, skipped: boolean, now: number, out: StreamAction[]): void {
    for (const h of this.held) {
      this.toLane(this.lanes[h.lane]!, h.change, now, out);
      this.txnLanes.add(h.lane);
    }
    this.dropHeld();
    const touched = [...this.txnLanes].filter((l) => this.lanes[l]!.open);
    for (const l of touched) this.lanes[l]!.boundary(position, time, !skipped);
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
}
