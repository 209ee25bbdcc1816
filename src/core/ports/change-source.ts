import type { Position, TableSchema } from '../model.js';
import type { StreamHooks } from '../cdc/stream-hooks.js';
import type { Selection } from './source.js';

/**
 * A row as the source sent it: column name to the value in the source's own text form, or null. A column that is
 * absent was not sent (an unchanged TOAST value under REPLICA IDENTITY DEFAULT) and must be left as it is.
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

export interface StartPoint {
  /** Replay changes after this position to converge a snapshot taken after it. */
  position: Position;
  /**
   * A source snapshot at exactly `position`, usable by snapshot reads while the change source stays open (null
   * when the slot already existed: a resumed flow). Reading under it makes the snapshot and the stream meet exactly.
   */
  snapshot: string | null;
}

export interface LagInfo {
  /** Bytes of change between the source's current position and what the target confirmed. */
  lagBytes: number;
  /** What the source keeps for us (PostgreSQL: WAL retained by the slot). */
  retainedBytes: number;
  active: boolean;
}

/**
 * Change data capture from a source. Positions are opaque; only `compare` orders them.
 */
export interface ChangeSource {
  /** Check the source can stream these tables; each failure says how to fix it. Writes nothing. */
  preflight(flow: string, tables: TableSchema[]): Promise<void>;
  /**
   * Create what streaming needs (PostgreSQL: publication, then slot) if absent. Idempotent. Called before any
   * snapshot read, so that every change after the snapshot's start is retained. With `resuming` (the flow already
   * has a checkpoint) a missing slot is an error, never recreated: a new slot would silently skip the changes
   * made while there was none.
   */
  prepare(flow: string, tables: TableSchema[], opts: { resuming: boolean }): Promise<StartPoint>;
  /** Release the snapshot held since `prepare` (after the snapshot phase). */
  releaseSnapshot(): Promise<void>;
  /**
   * Deliver events from `from` (exclusive of transactions already confirmed) until `signal` aborts, in order, a
   * batch at a time (what arrived together). `onEvents` is awaited: the source reads no further while it is
   * pending (backpressure). Resolves after the abort.
   */
  stream(flow: string, tables: TableSchema[], from: Position, onEvents: (events: StreamEvent[]) => Promise<void>, signal: AbortSignal): Promise<void>;
  /** Let the source discard what precedes `position`. Called only after the target committed up to it. */
  acknowledge(position: Position): Promise<void>;
  /** The current full rows for these keys (absent keys are left out), read now; used to complete partial updates. */
  fetchRows(table: TableSchema, keys: RowImage[]): Promise<RowImage[]>;
  /** The source's current position: `ferry stop` drains up to it. */
  currentPosition(): Promise<Position>;
  compare(a: Position, b: Position): number;
  lag(flow: string): Promise<LagInfo | undefined>;
  /**
   * Hooks that follow schema, partition and table-set changes while streaming (cdc/stream-hooks.ts for PostgreSQL),
   * with the poller that discovers them, running until `opts.signal`; absent for a source that has none.
   * `onTables`: tables added or whose columns changed.
   */
  streamHooks?(
    flow: string,
    tables: TableSchema[],
    selection: Selection,
    opts: { warn: (message: string) => void; onTables?: (tables: TableSchema[]) => void; signal: AbortSignal },
  ): Promise<{ hooks: StreamHooks; close(): Promise<void> }>;
  /** Drop the slot and publication. Idempotent. */
  cleanup(flow: string): Promise<void>;
  close(): Promise<void>;
}
