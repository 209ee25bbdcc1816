/**
 * What the CDC streamer (streamer.ts) is configured with and what it reports: its options, the state-store records
 * it keeps (checkpoint, lag, live status), and how many target connections it may hold.
 */
import type { Position, TableSchema } from '../model.js';

export const CDC_CHECKPOINT = 'cdc';
export const CDC_LAG = 'cdc-lag';
/**
 * Written by the streaming runtime every few seconds and on every warning: `{ at, lagMs, position, reconnects,
 * warning?: { at, message } }`. A reader adds the record's age to `lagMs` once it is stale (the streamer stopped
 * updating it), so the lag it shows keeps growing while nothing arrives or nothing commits.
 */
export const CDC_LIVE = 'cdc-live';

export interface LiveStatus {
  at: number;
  lagMs: number;
  position: string;
  reconnects: number;
  warning?: { at: number; message: string };
}

export interface AppliedInfo {
  position: Position;
  /** Source commit time (ms) of the last applied transaction or heartbeat. */
  sourceTime: number;
  appliedAt: number;
  changes: number;
  transactions: number;
}

export interface StreamerOptions {
  flow: string;
  tables: TableSchema[];
  batchMs?: number;
  /** Changes handed to the target per call while a transaction is open (or fewer, see `applyChunkBytes`). */
  applyChunk?: number;
  /** Bytes of row values per apply call: wide rows (TOASTed values) make smaller chunks. */
  applyChunkBytes?: number;
  /** Bytes of changes that may wait for the apply lane before the source is paused (the memory bound). */
  maxBacklogBytes?: number;
  /** Bytes a streamed transaction waiting for a target connection may hold (default 4 × maxBacklogBytes). */
  maxHeldBytes?: number;
  /** Commit at the next transaction boundary once this many changes are open. */
  commitChanges?: number;
  /** Stop: commit at the next transaction boundary (or roll back after `stopGraceMs`), then return. */
  signal: AbortSignal;
  stopGraceMs?: number;
  /** Polled about once a second: when it yields a position, return once everything up to it is applied. */
  drainTo?: () => Promise<Position | undefined>;
  onApplied?: (info: AppliedInfo) => void;
  /**
   * About once a second: how far behind the source the target is known to be, in ms: from the oldest change
   * received and not yet committed, or (nothing pending) from the source time of the last position confirmed. It
   * grows while nothing arrives and while nothing commits.
   */
  onLag?: (lagMs: number, position: Position) => void;
  /** Warnings (a table paused by a hook). */
  warn?: (message: string) => void;
  /**
   * `transaction` (default): one lane, whole source transactions in order, every target state one the source had.
   * `table`: `lanes` lanes, tables routed by a hash; each table's state is one the source had, a cross-table view
   * may mix moments.
   */
  consistency?: 'transaction' | 'table';
  /** Apply lanes with consistency: table (default 4). The target needs lanes + maxStreams + 1 connections. */
  lanes?: number;
  /** Streamed in-progress transactions with a target batch (a connection) of their own at once (default 4). */
  maxStreams?: number;
  /** The source counts as quiet when no events arrived for this long (ms): complete transactions commit at once. */
  quietMs?: number;
  /** A lane's quiet commits are at least this far apart (ms, default 10): bursts of tiny transactions still group. */
  minCommitGapMs?: number;
}

/**
 * Target connections the streamer may hold at once (lanes, streamed transactions, one spare). Takes the streamer's
 * options or the config's `cdc` section (`maxStreamedTransactions`).
 */
export function streamerConnections(opts: {
  consistency?: 'transaction' | 'table';
  lanes?: number;
  maxStreams?: number;
  maxStreamedTransactions?: number;
}): number {
  const lanes = opts.consistency === 'table' ? Math.max(1, opts.lanes ?? 4) : 1;
  return lanes + Math.max(1, opts.maxStreams ?? opts.maxStreamedTransactions ?? 4) + 1;
}
