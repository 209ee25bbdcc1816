import type { Position, TableSchema } from '../model.js';
import type { Change, RowImage } from './change-source.js';
import type { ChangeTargetCapabilities } from './capabilities.js';

export interface MissingRow {
  table: string;
  key: RowImage;
}

/**
 * One open target transaction receiving changes in source order. Each change is applied so that replaying it
 * again, or over a snapshot newer than it, converges: insert upserts, update sets the columns present by key,
 * delete deletes by key, a key change moves the row.
 */
export interface ApplyBatch {
  /**
   * Apply changes in order. Returns the rows an update could not complete: the row is missing on the target and
   * the change lacks some columns (unchanged TOAST). The caller fetches them from the source and upserts them.
   * `at` (optional) is the source position of the transaction the first change belongs to: an error the target
   * raises names it (without it, the error names the last position this flow committed).
   */
  apply(changes: Change[], at?: Position): Promise<MissingRow[]>;
  /** Upsert whole rows (fetched from the source) in this transaction. */
  upsert(table: string, rows: RowImage[]): Promise<void>;
  /** Record `position` as applied and commit, atomically with the changes. */
  commit(position: Position): Promise<void>;
  rollback(): Promise<void>;
  /**
   * Optional (`capabilities.savepoints`; needed to apply streamed transactions, which can abort a subtransaction): mark a point in this batch,
   * and undo every change applied after it. Names are plain identifiers chosen by the caller.
   */
  savepoint?(name: string): Promise<void>;
  rollbackTo?(name: string): Promise<void>;
  /** Optional: table schemas changed while this batch is open (a stream hook returned them); use them from now on. */
  updateTables?(tables: TableSchema[]): void;
}

/** Values given to `apply` and `upsert` are in an encoding from `capabilities.encodings`. */
export interface ChangeTarget {
  readonly capabilities: ChangeTargetCapabilities;
  /** The last position committed with `commit` for this flow (kept in the target itself), if any. */
  appliedPosition(flow: string): Promise<Position | undefined>;
  /**
   * Open a target transaction. Several batches may be open at once (parallel lanes, streamed transactions), each an
   * independent transaction on its own connection; only one of them commits a given position.
   */
  begin(flow: string, tables: TableSchema[]): Promise<ApplyBatch>;
  close(): Promise<void>;
}
