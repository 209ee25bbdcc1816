import type { Json, Position, PositionOrder, TableSchema } from '../model.js';
import type { StreamHooks } from '../cdc/stream-hooks.js';
import type { ChangeSourceCapabilities } from './capabilities.js';
import type { Selection } from './source.js';

/**
 * A row as the source sent it: column name (MongoDB: top-level field) to the value as text in the source's declared
 * value encoding (`capabilities.encoding`: `pg-text` or `mongo-ejson`, see capabilities.ts), or null. A column that
 * is absent was not sent (an unchanged TOAST value under REPLICA IDENTITY DEFAULT) and must be left as it is.
 */
export type RowImage = Record<string, string | null>;

export type Change =
  | { op: 'insert'; table: string; row: RowImage }
  /**
   * `old` is the old key when the key changed, or the whole old row under REPLICA IDENTITY FULL; null otherwise
   * (the key is then in `row`).
   */
  | { op: 'update'; table: string; row: RowImage; old: RowImage | null }
  /** `old` holds at least the key (the whole row under REPLICA IDENTITY FULL). */
  | { op: 'delete'; table: string; old: RowImage }
  | { op: 'truncate'; tables: string[]; cascade: boolean; restartIdentity: boolean };

/** A relation as the source describes it in its stream (PostgreSQL: a pgoutput Relation message). */
export interface RelationInfo {
  /** The source's id for it (PostgreSQL: the OID), stable across renames. */
  id: string;
  /** `schema.name` as published. */
  table: string;
  columns: { name: string; typeOid: number; typeMod: number; key: boolean }[];
  /** PostgreSQL: d (default), n (nothing), f (full), i (index). */
  replicaIdentity: string;
}

/** What a change stream delivers, in source commit order. Tables are source keys (`schema.name`). */
export type StreamEvent =
  | { kind: 'begin'; position: Position; time: number }
  /**
   * `xid` is present only inside a streamed block (between `stream-start` and `stream-stop`): the id of the
   * (sub)transaction that made the change. Outside a block, a change belongs to the transaction opened by `begin`.
   */
  | { kind: 'change'; change: Change; xid?: string }
  /** Everything of this transaction has been delivered; `position` orders transactions. */
  | { kind: 'commit'; position: Position; time: number }
  /**
   * The source is at `position` and has nothing more for us before it: once every earlier transaction is applied,
   * the checkpoint may move here (this is what keeps an idle slot from retaining WAL). `time` is when the source
   * wrote it, for lag in seconds.
   */
  | { kind: 'heartbeat'; position: Position; time: number }
  /** Every relation description, in stream order (before the first change of that relation in a session, and again when it changes). */
  | { kind: 'relation'; relation: RelationInfo }
  /** A logical message other than Ferry's heartbeat (`transactional`: written inside a transaction, delivered with it). */
  | { kind: 'message'; prefix: string; content: string; position: Position; transactional: boolean; xid?: string }
  /**
   * The source has sent everything before `position` (PostgreSQL: a keepalive's WAL end). Like a heartbeat, the
   * position may be confirmed once nothing received is left uncommitted; confirming it lets the source shut down.
   */
  | { kind: 'keepalive'; position: Position; time: number }
  /**
   * Streamed in-progress transactions (PostgreSQL protocol v2, `streaming 'on'`, PostgreSQL 14+). A large source
   * transaction arrives in blocks before it commits: `stream-start` opens a block of top-level transaction `xid`
   * (`first`: its first block), its changes follow (each with the (sub)transaction `xid` that made it), and
   * `stream-stop` closes the block. Blocks of different transactions interleave, and ordinary begin/commit
   * transactions arrive between blocks. `stream-commit` ends transaction `xid` at commit `position` (in commit
   * order with ordinary commits); `stream-abort` discards it (`subxid` = `xid`) or only its subtransaction `subxid`
   * and the subtransactions under it. Nothing of an aborted transaction may reach the target.
   */
  | { kind: 'stream-start'; xid: string; first: boolean }
  | { kind: 'stream-stop' }
  | { kind: 'stream-commit'; xid: string; position: Position; time: number }
  | { kind: 'stream-abort'; xid: string; subxid: string };

/**
 * An opaque handle to a consistent read of the source at exactly a start position (PostgreSQL: an exported snapshot
 * name; MongoDB: a cluster time). Made by a ChangeSource's `prepare`, understood only by a SnapshotSource of the
 * same engine (`useSnapshot`). Plain JSON.
 */
export type ReadHandle = Json;

export interface StartPoint {
  /** Replay changes after this position to converge a snapshot taken after it. */
  position: Position;
  /**
   * A consistent read at exactly `position`, when the source offers one (`capabilities.consistentSnapshot`) and the
   * flow is new; absent or null for a resumed flow (the slot already existed). Reading the snapshot under it makes
   * the snapshot and the stream meet exactly. How long it lives: `capabilities.sharedSnapshot`.
   */
  snapshot?: ReadHandle | null;
}

export interface LagInfo {
  /**
   * Change the source holds that the target has not confirmed, in bytes (PostgreSQL: WAL bytes); 0 or less: nothing
   * pending. Absent when the source does not count bytes (`capabilities.lag.bytes`).
   */
  lagBytes?: number;
  /**
   * Bytes the source keeps for this flow (PostgreSQL: WAL retained by the slot). Absent when it keeps nothing per
   * flow (MongoDB: the oplog is shared and capped).
   */
  retained?: number;
  /**
   * Seconds of history the source still holds before the flow's position falls off it (MongoDB: the oplog window);
   * absent when retention is per flow and unbounded (a PostgreSQL slot).
   */
  horizonSeconds?: number;
  active: boolean;
}

/** Setting up and tearing down what streaming needs at the source. */
export interface ChangeSetup {
  /** Check the source can stream these tables; each failure says how to fix it. Writes nothing. */
  preflight(flow: string, tables: TableSchema[]): Promise<void>;
  /**
   * Create what streaming needs (PostgreSQL: publication, then slot) if absent. Idempotent. Called before any
   * snapshot read, so that every change after the snapshot's start is retained. With `resuming` (the flow already
   * has a checkpoint) a missing slot is an error, never recreated: a new slot would silently skip the changes
   * made while there was none.
   */
  prepare(flow: string, tables: TableSchema[], opts: { resuming: boolean }): Promise<StartPoint>;
  /** Release the snapshot held since `prepare` (after the snapshot phase). Safe when none is held. */
  releaseSnapshot(): Promise<void>;
  /** Drop what `prepare` created (PostgreSQL: slot and publication). Idempotent. */
  cleanup(flow: string): Promise<void>;
}

/** The change stream itself. Positions are opaque JSON; only `compare` (the source's) orders them. */
export interface ChangeStream extends PositionOrder {
  /**
   * Deliver events from `from` (exclusive of transactions already confirmed) until `signal` aborts, in order, a
   * batch at a time (what arrived together). `onEvents` is awaited: the source reads no further while it is
   * pending (backpressure). Resolves after the abort.
   */
  stream(flow: string, tables: TableSchema[], from: Position, onEvents: (events: StreamEvent[]) => Promise<void>, signal: AbortSignal): Promise<void>;
  /**
   * Let the source discard what precedes `position`. Called only after the target committed up to it. A later
   * `stream` from `position` delivers exactly the transactions that commit after it; from an earlier `from`, the
   * source may start at `from` (MongoDB keeps no position for us) or after `position` (a PostgreSQL slot does).
   */
  acknowledge(position: Position): Promise<void>;
  /** The source's current position: `ferry stop` drains up to it. Not before any commit already delivered. */
  currentPosition(): Promise<Position>;
}

/** Reading current rows by key, to complete partial updates (`capabilities.partialRows`). */
export interface RowLookup {
  /** The current full rows for these keys (absent keys are left out), read now, in the source's value encoding. */
  fetchRows(table: TableSchema, keys: RowImage[]): Promise<RowImage[]>;
}

export interface LagReporter {
  /** How far the flow is behind the source, and what the source keeps for it; undefined when it has no stream yet. */
  lag(flow: string): Promise<LagInfo | undefined>;
}

export interface SchemaFollower {
  /**
   * Hooks that follow schema, partition and table-set changes while streaming (cdc/stream-hooks.ts for PostgreSQL),
   * with the poller that discovers them, running until `opts.signal`; absent for a source that has none
   * (`capabilities.schemaFollow`). `onTables`: tables added or whose columns changed.
   */
  streamHooks?(
    flow: string,
    tables: TableSchema[],
    selection: Selection,
    opts: { warn: (message: string) => void; onTables?: (tables: TableSchema[]) => void; signal: AbortSignal },
  ): Promise<{ hooks: StreamHooks; close(): Promise<void> }>;
}

/**
 * Change data capture from a source: the composition of the capability interfaces above, with what the adapter
 * declares it can do. Callers that need only a part take that part (e.g. RowLookup for completing updates).
 */
export interface ChangeSource extends ChangeSetup, ChangeStream, RowLookup, LagReporter, SchemaFollower {
  readonly capabilities: ChangeSourceCapabilities;
  close(): Promise<void>;
}
