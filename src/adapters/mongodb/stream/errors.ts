/**
 * The change stream's ends that no retry fixes, as FerryErrors with the advice to give. Pure.
 *
 * - Error 286 ChangeStreamHistoryLost: the resume point has left the oplog (the oplog window is shorter than the
 *   time the flow was away). Every change since is gone from the source's history: the flow must start over.
 * - Error 280 ChangeStreamFatalError ("resume token was not found"): the same, for older servers.
 * - A selected collection dropped or renamed (or its database dropped), and the invalidate event that follows.
 */
import { FerryError } from '../../../core/errors.js';

export const HISTORY_LOST = 286;
export const CHANGE_STREAM_FATAL = 280;
/** BSONObjectTooLarge: a change event over 16 MB on a server without $changeStreamSplitLargeEvent. */
export const OBJECT_TOO_LARGE = 10334;

export class ChangeStreamHistoryLostError extends FerryError {
  constructor(detail: string, cause?: unknown) {
    super(
      `the MongoDB change stream cannot resume: its resume point is no longer in the oplog (${detail}); the changes made since are lost to this flow`,
      'start the flow over: `ferry reset <config> --yes`, then `ferry run` with `target.onExistingRows: truncate`; and make the oplog window longer than any pause (replSetResizeOplog, or `storage.oplogMinRetentionHours`)',
    );
    this.name = 'ChangeStreamHistoryLostError';
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

export class CollectionGoneError extends FerryError {
  constructor(readonly collection: string, what: string) {
    super(
      `the MongoDB change stream stopped: collection ${collection} ${what}; its changes can no longer be followed`,
      'if this was intended, run the flow again without it (`exclude`); otherwise start the flow over with `ferry reset <config> --yes`',
    );
    this.name = 'CollectionGoneError';
  }
}

/** The error a server reply or driver error stands for: a FerryError for the fatal ones, else the original. */
export function translateStreamError(err: unknown): unknown {
  const e = err as { code?: unknown; codeName?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return err;
  if (e.code === HISTORY_LOST || e.codeName === 'ChangeStreamHistoryLost') {
    return new ChangeStreamHistoryLostError(`error ${HISTORY_LOST} ChangeStreamHistoryLost: ${String(e.message)}`, err);
  }
  if (e.code === CHANGE_STREAM_FATAL || e.codeName === 'ChangeStreamFatalError') {
    return new ChangeStreamHistoryLostError(`error ${CHANGE_STREAM_FATAL} ChangeStreamFatalError: ${String(e.message)}`, err);
  }
  if (e.code === OBJECT_TOO_LARGE || e.codeName === 'BSONObjectTooLarge') {
    return new FerryError(
      `a MongoDB change event is over 16 MB and this server cannot split it (${String(e.message)})`,
      'upgrade the source to MongoDB 6.0.9 / 7.0 or later (Ferry then reassembles $changeStreamSplitLargeEvent fragments), or make the document smaller (an update event carries the whole document and its changed fields, so a document near 16 MB overflows it)',
    );
  }
  return err;
}
