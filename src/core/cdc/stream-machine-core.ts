/**
 * The state the streamer's machine (stream-machine.ts) keeps for every consistency mode, and the moves all modes
 * share: which changes are ours (tables, pauses), which a restart skips (per lane, below its applied position),
 * appending to a lane's open batch, committing it at its last transaction boundary, and the commit points that
 * decide what may be acknowledged (commit-points.ts).
 */
import type { Position } from '../model.js';
import type { Change } from '../ports/change-source.js';
import { CommitPoints, type Point } from './commit-points.js';
import type { StreamAction } from './stream-actions.js';
import { Lane } from './stream-lane.js';

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

/** `lanes` argument of a point that waits on lane 0 alone (shared: no allocation per transaction). */
export const LANE_0: readonly number[] = [0];
export const NO_LANES: readonly number[] = [];

export class MachineCore {
  protected readonly tables: Set<string>;
  protected readonly paused = new Map<string, string>();
  private readonly reported = new Set<string>();
  protected readonly lanes: Lane[];
  protected readonly lane0: Lane;
  protected readonly multi: boolean;
  /**
   * Per lane, the applied position a restart skips below (undefined: nothing to skip). Positions only grow in
   * the stream, so once a transaction begins at or after a lane's threshold, no later one is below it: the
   * threshold is dropped and the common case compares nothing.
   */
  protected readonly thresholds: (Position | undefined)[];
  private thresholdsLeft = 0;
  protected readonly points: CommitPoints;
  protected nextId = 1;
  protected txnAt: Position | undefined;
  protected txnTime = 0;
  protected inTxn = false;
  protected skipAll = false;
  protected acked: Position;
  /** The `now` of the input being decided. */
  protected clock = 0;
  protected readonly lanePoints = (lane: number): Point[] => this.lanes[lane]!.points;

  constructor(protected readonly cfg: MachineConfig) {
    this.tables = new Set(cfg.tables);
    this.acked = cfg.start;
    const n = Math.max(1, cfg.lanes ?? 1);
    this.lanes = Array.from({ length: n }, (_, i) => new Lane(i));
    this.lane0 = this.lanes[0]!;
    this.multi = n > 1;
    this.thresholds = cfg.laneApplied ? this.lanes.map((_, i) => cfg.laneApplied![i]) : this.lanes.map(() => cfg.applied);
    for (const t of this.thresholds) if (t !== undefined) this.thresholdsLeft++;
    this.points = new CommitPoints(cfg.compare, cfg.start, !this.multi);
  }

  protected later(a: Position, b: Position): boolean {
    return this.cfg.compare(a, b) > 0;
  }

  protected route(table: string): number {
    if (!this.multi) return 0;
    const l = this.cfg.laneOf?.(table) ?? 0;
    return l >= 0 && l < this.lanes.length ? l : 0;
  }

  /** The transaction being received commits before `lane`'s applied position: that lane already has it. */
  protected skipFor(lane: number): boolean {
    const t = this.thresholds[lane];
    return this.txnAt !== undefined && t !== undefined && this.cfg.compare(this.txnAt, t) < 0;
  }

  /** Lane 0's applied position, while a restart may still meet transactions below it. */
  protected alreadyApplied(position: Position): boolean {
    const t = this.thresholds[0];
    return t !== undefined && this.cfg.compare(position, t) <= 0;
  }

  /** A transaction begins at `position`: drop the thresholds it has passed; skip it if every lane has it. */
  protected beginAt(position: Position): void {
    this.txnAt = position;
    if (this.thresholdsLeft === 0) {
      this.skipAll = false;
      return;
    }
    let all = true;
    for (let l = 0; l < this.thresholds.length; l++) {
      const t = this.thresholds[l];
      if (t === undefined) all = false;
      else if (this.cfg.compare(position, t) >= 0) {
        this.thresholds[l] = undefined;
        this.thresholdsLeft--;
        all = false;
      }
    }
    this.skipAll = all;
  }

  private dropped(table: string, out: StreamAction[]): boolean {
    if (this.paused.size > 0) {
      const reason = this.paused.get(table);
      if (reason !== undefined) {
        if (!this.reported.has(table)) {
          this.reported.add(table);
          out.push({ type: 'paused', table, reason });
        }
        return true;
      }
    }
    return !this.tables.has(table);
  }

  /** The change as far as it is ours: undefined when its table is not applied (or paused). */
  protected keep(change: Change, out: StreamAction[]): Change | undefined {
    if (change.op !== 'truncate') return this.dropped(change.table, out) ? undefined : change;
    const tables = change.tables.filter((t) => !this.dropped(t, out));
    if (tables.length === 0) return undefined;
    return tables.length === change.tables.length ? change : { ...change, tables };
  }

  protected toLane(lane: Lane, change: Change, now: number, out: StreamAction[]): void {
    lane.append(change, this.txnAt, now, this.cfg.applyChunk, this.cfg.applyChunkBytes, out);
  }

  /** Commit the lane's open batch at its last boundary (if it has one). */
  protected commit(lane: Lane, out: StreamAction[]): void {
    if (!lane.open || lane.lastPosition === undefined) return;
    lane.flush(out);
    const id = this.nextId++;
    const action: Extract<StreamAction, { type: 'commit' }> =
      lane.index === 0
        ? { type: 'commit', id, position: lane.lastPosition, time: lane.lastTime, changes: lane.changes, transactions: lane.txns, ack: false }
        : { type: 'commit', id, position: lane.lastPosition, time: lane.lastTime, changes: lane.changes, transactions: lane.txns, ack: false, lane: lane.index };
    out.push(action);
    CommitPoints.committed(lane.points, lane.index, id);
    lane.reset(this.clock);
    this.points.pop(out, action);
  }

  /** Every lane commits what it holds at its last boundary (before a streamed block, a serial transaction, a stop). */
  protected drain(out: StreamAction[]): void {
    for (const lane of this.lanes) this.commit(lane, out);
  }

  /** With several lanes: lanes meet here (see the `barrier` action). */
  protected meet(out: StreamAction[]): void {
    if (this.multi && out.at(-1)?.type !== 'barrier') out.push({ type: 'barrier' });
  }

  /** A commit point of the stream (or an idle position); `lanes` hold part of it in their open batches. */
  protected point(position: Position, time: number, lanes: readonly number[], ids?: readonly number[]): void {
    this.points.add(position, time, lanes, this.lanePoints, ids);
  }
}
