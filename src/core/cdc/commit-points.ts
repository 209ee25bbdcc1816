/**
 * Which source position the streamer may acknowledge, and when: a FIFO of the stream's commit points (and idle
 * positions: heartbeats, keepalives, transactions with nothing of ours). A point is ready once every lane that holds
 * part of it has scheduled the commit of that batch; the acknowledgement moves to the end of the longest ready
 * prefix, after the commits that cover it are done (the executor waits for them).
 *
 * Cost: one point per open batch, not per transaction. A new point joins the last one when the last one still waits
 * on every lane the new one waits on: both wait on the same open batches, so they become ready at the same moment,
 * and only the later position is ever acknowledged. That makes a stream of small transactions in one lane (with
 * keepalives between them) one point per target commit, updated in place: no allocation per transaction. With
 * several lanes, transactions of different lanes in turn still get a point each.
 */
import type { Position } from '../model.js';
import type { StreamAction } from './stream-actions.js';

export interface Point {
  position: Position;
  time: number;
  /** Source time of the oldest transaction merged into it (lag). */
  since: number;
  /** Lanes whose open batch holds part of it (not yet scheduled for commit). */
  waits: Set<number>;
  /** Commits that cover it. */
  ids: number[];
}

const NONE: readonly number[] = [];

export class CommitPoints {
  /** Points from `head` on; the consumed prefix is dropped in bulk (shift per point would be quadratic). */
  private items: Point[] = [];
  private head = 0;
  private scheduled: Position;

  constructor(
    private readonly compare: (a: Position, b: Position) => number,
    start: Position,
    /** One lane: its commits run in order, so an ack may ride on the commit action itself. */
    private readonly oneLane: boolean,
  ) {
    this.scheduled = start;
  }

  private get tail(): Point | undefined {
    return this.items.length > this.head ? this.items[this.items.length - 1] : undefined;
  }

  /** The source time of the oldest point still waiting on a lane. */
  oldestWaiting(): number | undefined {
    for (let i = this.head; i < this.items.length; i++) if (this.items[i]!.waits.size > 0) return this.items[i]!.since;
    return undefined;
  }

  /**
   * A commit point (or an idle position) at `position`; `lanes` hold part of it in their open batches (their
   * `points` lists receive it), `ids` are commits already scheduled that cover it.
   */
  add(position: Position, time: number, lanes: readonly number[], lanePoints: (lane: number) => Point[], ids: readonly number[] = NONE): void {
    const last = this.tail;
    if (last) {
      if (last.waits.size > 0 && ids.length === 0 && waitsOnAll(last, lanes)) {
        // Ready together with the last point: only the later position matters.
        last.position = position;
        last.time = time;
        return;
      }
      if (lanes.length === 0 && ids.length === 0 && last.waits.size === 0 && last.ids.length === 0) {
        // Idle positions in a row (keepalives, filtered transactions): only the latest matters.
        if (this.compare(position, last.position) > 0) {
          last.position = position;
          last.time = time;
        }
        return;
      }
    }
    const p: Point = { position, time, since: time, waits: new Set(lanes), ids: ids.length ? [...ids] : [] };
    this.items.push(p);
    for (const l of lanes) lanePoints(l).push(p);
  }

  /** Lane `lane` scheduled commit `id` of its open batch, which holds part of `points`. */
  static committed(points: Point[], lane: number, id: number): void {
    for (const p of points) {
      p.waits.delete(lane);
      p.ids.push(id);
    }
  }

  /**
   * Acknowledge the ready prefix: as part of `commit` when the prefix ends at its position (one lane), else as an
   * `advance` after the commits that cover it.
   */
  pop(out: StreamAction[], commit?: Extract<StreamAction, { type: 'commit' }>): void {
    let last: Point | undefined;
    let ids: number[] | undefined;
    const items = this.items;
    while (this.head < items.length && items[this.head]!.waits.size === 0) {
      last = items[this.head++]!;
      if (last.ids.length) {
        if (!ids) ids = last.ids;
        else for (const id of last.ids) if (!ids.includes(id)) ids.push(id);
      }
    }
    if (this.head === items.length) {
      items.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
    if (!last || this.compare(last.position, this.scheduled) <= 0) return;
    this.scheduled = last.position;
    // One lane: commits run in order on its queue, so acknowledging right after this one is exact. Several lanes
    // complete out of order: the advance waits for every commit that covers the prefix.
    if (commit && this.oneLane && this.compare(commit.position, last.position) === 0) {
      commit.ack = true;
      return;
    }
    out.push(ids?.length ? { type: 'advance', position: last.position, time: last.time, after: ids } : { type: 'advance', position: last.position, time: last.time });
  }
}

function waitsOnAll(p: Point, lanes: readonly number[]): boolean {
  for (const l of lanes) if (!p.waits.has(l)) return false;
  return true;
}
