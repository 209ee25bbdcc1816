import type { Json, PlannedRange, TableSchema } from '../model.js';
import type { Readable } from 'node:stream';
import type { SnapshotSourceCapabilities } from './capabilities.js';
import type { ReadHandle } from './change-source.js';

/** Which tables a flow covers and what they are called on the target. Built from the config by the core. */
export interface Selection {
  include: string[];
  exclude: string[];
  /** Source `schema.table` (or `schema.*`) to target `schema.table` (or `schema.*`). */
  rename: Record<string, string>;
  /** How owners and roles of the carried objects are handled (config `schema.owner`, `roles`); default keep, create. */
  objects?: { owner: 'keep' | 'target-user'; roles: 'create' | 'skip' | 'require' };
}

export type { PlannedRange };

/** A bounded slice of a range that fits one target transaction. */
export interface Chunk {
  /** Opaque bounds the source reads and the target deletes before loading. */
  bounds: Json;
  /** Cursor for the next chunk of the same range, or null when this chunk ends the range. */
  next: Json;
}

/**
 * Rows in transit. `format` names the encoding (e.g. `pg-copy-text`); a target states which formats it accepts.
 * The stream is consumed once and must be consumed or destroyed by the receiver.
 */
export interface RowStream {
  format: string;
  stream: Readable;
}

/** Describing the selected tables (the schema the flow records and the target recreates). */
export interface SchemaReader {
  /** Describe the selected tables. Throws a ConfigError naming an `include` entry that matches nothing. */
  describe(selection: Selection): Promise<TableSchema[]>;
}

/** Reading a table by ranges and chunks. Every method is safe to call again for the same input. */
export interface RangeReader {
  /** Split a table into ranges of about `rowsPerRange` rows. Deterministic for a given table state. */
  planRanges(table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]>;
  /**
   * The chunk of `range` that starts at `cursor` (null: the range's start) and holds at most `maxRows` rows (about,
   * for ranges of a table without a key). The same range and cursor give the same chunk while the table is unchanged;
   * following `next` from any chunk covers the rest of the range, each row in exactly one chunk.
   */
  nextChunk(table: TableSchema, range: Json, cursor: Json, maxRows: number): Promise<Chunk>;
  /** Stream the rows inside `bounds` in a format from `accepted`, without holding them in memory. */
  read(table: TableSchema, bounds: Json, accepted: readonly string[]): Promise<RowStream>;
}

export interface SequenceReader {
  /** Current values of the sequences the tables own, read at finalize (and cutover) time, not at plan time. */
  sequences(tables: TableSchema[]): Promise<SequenceValue[]>;
}

/** Reading under a ChangeSource's consistent read handle (`StartPoint.snapshot`), when the source offers it. */
export interface ConsistentReader {
  /** Read every later chunk under `handle` (a StartPoint.snapshot of the same engine); undefined: the latest data. */
  useSnapshot?(handle: ReadHandle | undefined): void;
}

/**
 * Reads a consistent-enough snapshot of tables by ranges: the composition of the capability interfaces above, with
 * what the adapter declares it can do.
 */
export interface SnapshotSource extends SchemaReader, RangeReader, SequenceReader, ConsistentReader {
  readonly capabilities: SnapshotSourceCapabilities;
  close(): Promise<void>;
}

export interface SequenceValue {
  /** Source table key (`schema.name`) and column the sequence feeds. */
  table: string;
  column: string;
  /** The sequence's last value as text (int8 range), and whether nextval has been called since it was set. */
  lastValue: string;
  isCalled: boolean;
}
