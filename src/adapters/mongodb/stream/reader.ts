/**
 * Change stream batches (what one aggregate or getMore reply holds) to Ferry's StreamEvents. Pure and stateful: one
 * reader per stream session.
 *
 * - Each event outside a transaction is its own source transaction: begin, change, commit at the event's resume
 *   token (resuming after it starts at the next event).
 * - Consecutive events of one multi-document transaction (same lsid and txnNumber) form one source transaction; it is
 *   committed at its last event's token, once the next event is of another transaction or a batch ends empty. A
 *   transaction is thus never split across target commits, even when it spans getMore replies.
 * - Fragments of a split event are held until the last one (split.ts); the position never points inside an event.
 * - An empty batch carries the cursor's postBatchResumeToken: a heartbeat at it (nothing of ours is before it), so
 *   an idle flow's checkpoint keeps up with the oplog instead of falling out of its window.
 */
import type { Document } from 'bson';
import type { StreamEvent } from '../../../core/ports/change-source.js';
import { convertEvent, transactionOf, type EventContext } from './events.js';
import { positionOfToken, positionTimeMs, type MongoPosition } from './positions.js';
import { SplitEventAssembler } from './split.js';

/** One server reply of a change stream cursor: `cursor.firstBatch`/`nextBatch` and `cursor.postBatchResumeToken`. */
export interface ChangeBatch {
  events: Document[];
  postBatchResumeToken?: { _data: string };
}

function eventTime(event: Document, position: MongoPosition): number {
  // wallTime (MongoDB 6.0+) has milliseconds; clusterTime only seconds.
  const wall = event.wallTime;
  return wall instanceof Date ? wall.getTime() : positionTimeMs(position);
}

export class ChangeStreamReader {
  private readonly split = new SplitEventAssembler();
  private openTxn: { id: string; position: MongoPosition; time: number } | undefined;
  /** Skipped events since the last commit: their last position, confirmed as a heartbeat when nothing is open. */
  private skipped: { position: MongoPosition; time: number } | undefined;

  constructor(private readonly ctx: EventContext) {}

  private close(out: StreamEvent[]): void {
    if (!this.openTxn) return;
    out.push({ kind: 'commit', position: this.openTxn.position, time: this.openTxn.time });
    this.openTxn = undefined;
  }

  /** The StreamEvents of one batch, in order. Throws on a stop (drop, rename, invalidate) after what precedes it. */
  read(batch: ChangeBatch): StreamEvent[] {
    const out: StreamEvent[] = [];
    for (const raw of batch.events) {
      const event = this.split.push(raw);
      if (!event) continue;
      const position = positionOfToken(event._id as { _data: string });
      const time = eventTime(event, position);
      let converted;
      try {
        converted = convertEvent(event, this.ctx);
      } catch (err) {
        // Deliver everything before the stop first, so that it is applied and checkpointed.
        this.close(out);
        (err as { events?: StreamEvent[] }).events = out;
        throw err;
      }
      const txn = transactionOf(event);
      if (this.openTxn && this.openTxn.id !== txn) this.close(out);
      if (converted.kind === 'skip') {
        if (this.openTxn) this.openTxn = { ...this.openTxn, position, time };
        else this.skipped = { position, time };
        continue;
      }
      this.skipped = undefined;
      if (txn !== undefined) {
        if (!this.openTxn) out.push({ kind: 'begin', position: position, time });
        this.openTxn = { id: txn, position, time };
        out.push({ kind: 'change', change: converted.change });
        continue;
      }
      out.push({ kind: 'begin', position: position, time });
      out.push({ kind: 'change', change: converted.change });
      out.push({ kind: 'commit', position: position, time });
    }
    if (batch.events.length === 0) this.close(out);
    if (!this.openTxn && !this.split.pending) {
      if (batch.events.length === 0 && batch.postBatchResumeToken) {
        const position = positionOfToken(batch.postBatchResumeToken);
        out.push({ kind: 'heartbeat', position: position, time: positionTimeMs(position) });
        this.skipped = undefined;
      } else if (this.skipped) {
        out.push({ kind: 'heartbeat', position: this.skipped.position, time: this.skipped.time });
        this.skipped = undefined;
      }
    }
    return out;
  }
}
