/**
 * What the PostgreSQL adapters declare (core/ports/capabilities.ts). One place, so the runtimes can read them
 * before an adapter exists (AWS Validate decides on keyless tables without opening a change target).
 */
import type {
  ChangeSourceCapabilities,
  ChangeTargetCapabilities,
  SnapshotSourceCapabilities,
  SnapshotTargetCapabilities,
} from '../../core/ports/capabilities.js';
import { PG_COPY_BINARY, PG_COPY_TEXT } from './copy-format.js';

export const PG_CHANGE_SOURCE_CAPABILITIES: ChangeSourceCapabilities = Object.freeze({
  encoding: 'pg-text',
  // The slot's exported snapshot: exact, but it lives only as long as the replication connection that made it.
  consistentSnapshot: true,
  sharedSnapshot: false,
  flowState: true,
  // Under REPLICA IDENTITY FULL (preflight requires it for a table without a key).
  keylessTables: true,
  // Unchanged TOAST values are not sent under REPLICA IDENTITY DEFAULT.
  partialRows: true,
  transactions: true,
  // Protocol v1 in main: whole transactions only. v2decode sets this when it turns streaming on (PostgreSQL 14+).
  streamedTransactions: false,
  truncate: true,
  schemaFollow: true,
  lag: Object.freeze({ bytes: true, retained: true, horizon: false }),
});

export const PG_CHANGE_TARGET_CAPABILITIES: ChangeTargetCapabilities = Object.freeze({
  encodings: Object.freeze(['pg-text'] as const),
  // A replayed insert into a table without a key adds the row a second time.
  keylessReplay: false,
  // PgApplyBatch has no savepoint/rollbackTo yet in main: applyengine sets this when it adds them.
  savepoints: false,
  concurrentBatches: true,
  truncate: true,
});

export const PG_SNAPSHOT_SOURCE_CAPABILITIES: SnapshotSourceCapabilities = Object.freeze({
  encoding: 'pg-text',
  formats: Object.freeze([PG_COPY_BINARY, PG_COPY_TEXT]),
  consistentRead: true,
  keylessRanges: true,
  sequences: true,
});

export const PG_SNAPSHOT_TARGET_CAPABILITIES: SnapshotTargetCapabilities = Object.freeze({
  encodings: Object.freeze(['pg-text'] as const),
  sequences: true,
  keylessTables: true,
});

/** The digest of checksum.ts: md5 of the row's text, first 60 bits, summed. Same on every PostgreSQL version. */
export const PG_CHECKSUM_KIND = 'pg-md5-rowtext-60';
