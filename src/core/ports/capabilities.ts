/**
 * What each adapter declares it can do, so the runtimes decide from declarations instead of assuming PostgreSQL.
 * Plain data (JSON-able), read once at composition time; a value never changes during a process. Each port's
 * contract suite (test/contracts) checks that an adapter does what it declares and no less.
 */
import { tableKey, type TableSchema } from '../model.js';

/**
 * What the strings of a RowImage mean (and the values a RowStream carries):
 * - `pg-text`: PostgreSQL's text output form of the column's type (what `COPY … TO STDOUT` and pgoutput send);
 * - `mongo-ejson`: each field's canonical Extended JSON v2 text (`{"$numberLong":"1"}`, `"text"`, `{"a":1}`).
 * A source declares one; a target declares which it accepts. Between a pair that differ, the composition root puts
 * a codec (ports/codec.ts). Equal encodings pass values through untouched.
 */
export type ValueEncoding = 'pg-text' | 'mongo-ejson';

export interface ChangeSourceCapabilities {
  encoding: ValueEncoding;
  /**
   * `prepare` of a new flow returns `StartPoint.snapshot`: a read handle at exactly the start position, which a
   * snapshot source of the same engine reads under (`useSnapshot`). Snapshot and stream then meet exactly, which is
   * what makes a table without a key copyable while changes stream (its replayed changes would not converge).
   */
  consistentSnapshot: boolean;
  /**
   * The handle stays usable from other processes and after `releaseSnapshot` of the process that made it (MongoDB
   * `atClusterTime` within the history window). false: it lives only while this ChangeSource holds it (PostgreSQL's
   * exported snapshot dies with the replication connection), so a resumed or distributed copy cannot use it.
   */
  sharedSnapshot: boolean;
  /**
   * `prepare` keeps per-flow state on the source (PostgreSQL: slot and publication), so a resumed `prepare` of a flow
   * whose state is gone fails instead of silently starting over. false: the source keeps nothing per flow (MongoDB:
   * the oplog is shared); a lost position shows as a resume that fails in `stream` instead.
   */
  flowState: boolean;
  /** Tables without a key can be streamed (PostgreSQL: under REPLICA IDENTITY FULL, changes carry whole old rows). */
  keylessTables: boolean;
  /** An update may lack columns (PostgreSQL: unchanged TOAST values); the streamer completes them with `fetchRows`. */
  partialRows: boolean;
  /** Changes of one source transaction arrive between one `begin` and one `commit`, and only committed ones. */
  transactions: boolean;
  /** May deliver in-progress transactions (`stream-start`/`stream-stop`/`stream-commit`/`stream-abort` events). */
  streamedTransactions: boolean;
  /** Delivers `truncate` changes. */
  truncate: boolean;
  /** `streamHooks` is implemented: schema, partition and table-set changes are followed while streaming. */
  schemaFollow: boolean;
  /** Which fields of `lag()` it fills (LagInfo). */
  lag: { bytes: boolean; retained: boolean; horizon: boolean };
}

export interface ChangeTargetCapabilities {
  /** Value encodings `apply` and `upsert` accept. */
  encodings: readonly ValueEncoding[];
  /**
   * Replaying a change of a table without a key converges (false for PostgreSQL: a replayed insert into a keyless
   * table adds a second row). When false, a keyless table may be streamed only over a copy read under the exact
   * start snapshot (ChangeSourceCapabilities.consistentSnapshot, held while it is copied).
   */
  keylessReplay: boolean;
  /** ApplyBatch implements `savepoint`/`rollbackTo` (needed for streamed transactions that abort a subtransaction). */
  savepoints: boolean;
  /** Several batches may be open at once, each its own transaction. */
  concurrentBatches: boolean;
  /** Applies `truncate` changes. */
  truncate: boolean;
}

export interface SnapshotSourceCapabilities {
  encoding: ValueEncoding;
  /** RowStream formats `read` can produce, best first. */
  formats: readonly string[];
  /** `useSnapshot` honours a ChangeSource's `StartPoint.snapshot` of the same engine. */
  consistentRead: boolean;
  /** Tables without a key are split into ranges like the others (PostgreSQL: physical block ranges). */
  keylessRanges: boolean;
  /** `sequences` reports sequence values (false: it always returns []). */
  sequences: boolean;
}

export interface SnapshotTargetCapabilities {
  /** Value encodings the rows it loads may be in (a RowStream format also implies one). */
  encodings: readonly ValueEncoding[];
  /** `finalize` sets sequence values (false: it ignores them). */
  sequences: boolean;
  /** Tables without a key can be created and loaded (ranges are then replaced whole by `resetTable`). */
  keylessTables: boolean;
}

/** Whether values from `source` reach `target` without a codec. */
export function sameEncoding(source: { encoding: ValueEncoding }, target: { encodings: readonly ValueEncoding[] }): boolean {
  return target.encodings.includes(source.encoding);
}

/**
 * The tables without a key that cannot be streamed exactly, given whether their copy is read under the exact start
 * snapshot (`exactSnapshot`: the runtime holds the source's handle for the whole copy of them). Empty: all fine.
 */
export function keylessNotStreamable(
  tables: readonly TableSchema[],
  caps: { source: ChangeSourceCapabilities; target: ChangeTargetCapabilities },
  exactSnapshot: boolean,
): string[] {
  if (caps.target.keylessReplay) return [];
  if (exactSnapshot && caps.source.consistentSnapshot) return [];
  return tables.filter((t) => t.primaryKey.length === 0).map((t) => tableKey(t.source));
}
