/** What the MongoDB adapters declare (core/ports/capabilities.ts), in one place, like the PostgreSQL ones. */
import type {
  ChangeSourceCapabilities,
  ChangeTargetCapabilities,
  SnapshotSourceCapabilities,
  SnapshotTargetCapabilities,
} from '../../core/ports/capabilities.js';
import { MONGO_DOCS } from '../../core/codec/ejson.js';

export const MONGO_CHANGE_SOURCE_CAPABILITIES: ChangeSourceCapabilities = Object.freeze({
  encoding: 'mongo-ejson',
  // Ranges are read at different times (majority reads); replayed changes converge instead (every document has _id).
  consistentSnapshot: false,
  sharedSnapshot: false,
  // No slot: the resume token lives in the state store only, and a resumed prepare needs nothing on the source.
  flowState: false,
  keylessTables: false,
  // Updates carry the whole document (updateLookup or post-images).
  partialRows: false,
  // A multi-document transaction's events arrive between one begin and one commit (reader.ts).
  transactions: true,
  streamedTransactions: false,
  truncate: false,
  schemaFollow: false,
  // The oplog is shared and capped: no bytes per flow (its window is checked in preflight).
  lag: Object.freeze({ bytes: false, retained: false, horizon: false }),
});

export const MONGO_CHANGE_TARGET_CAPABILITIES: ChangeTargetCapabilities = Object.freeze({
  encodings: Object.freeze(['mongo-ejson'] as const),
  keylessReplay: false,
  // Bulk writes outside a transaction: nothing to roll back to.
  savepoints: false,
  concurrentBatches: true,
  truncate: true,
});

export const MONGO_SNAPSHOT_SOURCE_CAPABILITIES: SnapshotSourceCapabilities = Object.freeze({
  encoding: 'mongo-ejson',
  formats: Object.freeze([MONGO_DOCS]),
  consistentRead: false,
  keylessRanges: false,
  sequences: false,
});

export const MONGO_SNAPSHOT_TARGET_CAPABILITIES: SnapshotTargetCapabilities = Object.freeze({
  encodings: Object.freeze(['mongo-ejson'] as const),
  sequences: false,
  keylessTables: false,
});
