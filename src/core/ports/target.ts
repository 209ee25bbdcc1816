import type { Json, TableSchema } from '../model.js';
import type { RowStream, SequenceValue } from './source.js';
import type { SnapshotTargetCapabilities } from './capabilities.js';

export interface CopyStats {
  rows: number;
  bytes: number;
}

/**
 * Holds one job's progress on the target. Created by `openRange`, which takes a lock on the job's progress marker
 * in the target itself, so two deliveries of one job never load the same chunk twice: the second waits, then sees
 * the cursor the first one committed.
 */
export interface RangeWriter {
  /** Where this job stands according to the target (authoritative over the state store's copy). */
  readonly cursor: Json;
  readonly done: boolean;
  /** Rows and bytes this job has committed so far, by any delivery (for progress only). */
  readonly committed: CopyStats;
  /** Replace the rows inside `bounds` with `rows`: delete what is there, then load. Not yet committed. */
  write(bounds: Json, rows: RowStream): Promise<CopyStats>;
  /** Record `next` (null: range complete) as the job's cursor and commit it with the rows written. */
  commit(next: Json): Promise<void>;
  /** Abandon the uncommitted chunk. Safe to call after a failure or twice. */
  release(): Promise<void>;
}

/** The target's schema work: before any row (preflight, tables) and after every range (finalize). */
export interface SchemaWriter {
  /**
   * Check that every table can be created and is empty (or truncate it when `truncate`), before anything is written.
   * Throws a ConfigError naming the table and column at fault. `resuming` skips the emptiness check: the rows
   * there are this flow's own.
   */
  preflight(tables: TableSchema[], opts: { truncate: boolean; resuming: boolean }): Promise<void>;
  /** Create schemas, types and tables with their primary keys. Idempotent; all or nothing. */
  createTables(flow: string, tables: TableSchema[]): Promise<void>;
  /**
   * Build secondary indexes, constraints, foreign keys; set sequences. Idempotent; called after every job is done.
   * Returns what it could not do but the user should know (a foreign key to a table outside the flow).
   */
  finalize(flow: string, tables: TableSchema[], sequences: SequenceValue[]): Promise<{ warnings: string[] }>;
}

/** Loading ranges exactly once each. */
export interface RangeLoader {
  /** Formats `RangeWriter.write` accepts, best first. */
  readonly accepts: readonly string[];
  openRange(flow: string, jobId: string, table: TableSchema): Promise<RangeWriter>;
  /** Empty a target table (repairing a keyless table means copying it whole again). */
  resetTable(table: TableSchema): Promise<void>;
}

/** The snapshot side of a target: the composition of the capability interfaces above. */
export interface SnapshotTarget extends SchemaWriter, RangeLoader {
  readonly capabilities: SnapshotTargetCapabilities;
  close(): Promise<void>;
}
