/**
 * What the streamer's state machine (stream-machine.ts) decides, as plain data: the actions the executor
 * (streamer.ts) runs, and the memory estimate both use for their bounds.
 */
import type { Position } from '../model.js';
import type { Change, RelationInfo } from '../ports/change-source.js';

/** Which batch an action is for: lane `lane` (absent: 0), or the streamed transaction `xid` (runs on lane 0's queue). */
export interface BatchRef {
  lane?: number;
  xid?: string;
}

export type HookEvent = { kind: 'relation'; relation: RelationInfo } | { kind: 'message'; prefix: string; content: string; position: Position };

export type StreamAction =
  /** Apply these changes in the batch (begin one if none is open). */
  /** `at`: the source position (begin) of the transaction of the first change, for errors that name it. */
  | ({ type: 'apply'; changes: Change[]; bytes: number; at?: Position } & BatchRef)
  /** Mark (savepoint) or undo to (rollbackTo) a point of a streamed transaction's batch. */
  | ({ type: 'savepoint' | 'rollbackTo'; name: string } & BatchRef)
  /**
   * Commit the batch at `position` (`id` names this commit for later `advance`s). `ack`: then checkpoint and
   * acknowledge `position` (everything before it is committed once this is).
   */
  | ({ type: 'commit'; id: number; position: Position; time: number; changes: number; transactions: number; ack: boolean } & BatchRef)
  /** Once the commits `after` are done: checkpoint and acknowledge `position`. */
  | { type: 'advance'; position: Position; time: number; after?: number[] }
  /** Run the hook for this event in the batch (begin one if none is open); then call `hookDone`. */
  | ({ type: 'hook'; event: HookEvent } & BatchRef)
  /** Drop the batch (an aborted streamed transaction, or stop grace ran out inside a transaction). */
  | ({ type: 'rollback' } & BatchRef)
  /** A change of a paused table was dropped (reported once per table). */
  | { type: 'paused'; table: string; reason: string }
  /**
   * Several lanes: every lane waits here until what all lanes scheduled before it is done (work that spans lanes,
   * a serial or streamed transaction, must not overtake, or be overtaken by, another lane's earlier changes).
   */
  | { type: 'barrier' }
  /** Wait for every lane to finish, then end the stream. */
  | { type: 'finish' };

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
