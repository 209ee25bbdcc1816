/**
 * What the change stream logic (change-source.ts) needs from a MongoDB deployment: the driver adapter
 * (../server.ts) implements it with the `mongodb` package; nothing else does. Server replies pass through unchanged
 * (documents deserialized with EXACT_BSON), so the logic sees exactly what the server sent.
 */
import type { Document } from 'bson';
import type { TableName, TableSchema } from '../../../core/model.js';
import type { ChangeBatch } from './reader.js';

export type FullDocumentMode = 'updateLookup' | 'required';

export interface OpenStream {
  /** Selected collections (`schema` = database, `name` = collection). */
  collections: TableName[];
  /** Resume after this token; absent: start now. */
  resumeAfter?: { _data: string };
  /** `required`: post-images (every collection has changeStreamPreAndPostImages); `updateLookup` otherwise. */
  fullDocument: FullDocumentMode;
}

/** A change stream cursor: the aggregate's first batch, then one getMore reply per call (empty after maxAwaitTimeMS). */
export interface ChangeStreamCursor {
  next(): Promise<ChangeBatch>;
  close(): Promise<void>;
}

export interface MongoStreamServer {
  open(opts: OpenStream): Promise<ChangeStreamCursor>;
  /** Deployment, privileges, oplog window and pre-image checks (preflight.ts); returns the full-document mode to use. */
  preflight(tables: TableSchema[]): Promise<FullDocumentMode>;
  /**
   * Wait until the majority-committed data includes cluster time `at` (a `majority` read with `afterClusterTime`
   * on each collection). A fresh stream's start token stands for the node's last applied write, which may not be
   * majority-committed yet: a majority read of a range before then would miss that write, and the stream, resuming
   * after the token, would never replay it.
   */
  awaitMajority(collections: TableName[], at: { t: number; i: number }): Promise<void>;
  /** Current documents with these `_id`s (majority read). */
  find(table: TableName, ids: unknown[]): Promise<Document[]>;
  close(): Promise<void>;
}
