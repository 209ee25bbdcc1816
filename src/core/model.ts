/**
 * The plain-JSON vocabulary that crosses every boundary in Ferry: between the planner and the workers, between a
 * Step Functions state and a Lambda, between a process and its state store. Nothing here is an object reference,
 * and nothing here knows which database it describes beyond the type names it carries as strings.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A schema-qualified table name, as written in the database (no quoting, case kept). */
export interface TableName {
  schema: string;
  name: string;
}

export function tableKey(t: TableName): string {
  return `${t.schema}.${t.name}`;
}

export interface ColumnSchema {
  name: string;
  /** The source engine's own type text, e.g. `numeric(38,0)` or `public.mood` (format_type in PostgreSQL). */
  type: string;
  /** Catalog facts the target needs to recreate the type when it is user-defined (enum, domain). Opaque to the core. */
  typeRef?: Json;
  nullable: boolean;
  default?: string;
  identity?: 'always' | 'by default';
  /** Stored generated columns are recomputed by the target and never copied. */
  generated?: string;
}

/**
 * What a source knows about one selected table. `extra` holds engine-specific DDL facts (indexes, constraints,
 * sequences, replica identity) that only a target of the same engine interprets; the core passes it through.
 */
export interface TableSchema {
  source: TableName;
  target: TableName;
  columns: ColumnSchema[];
  /** Primary key columns in key order; empty when the table has none (it is then copied by physical block ranges). */
  primaryKey: string[];
  estimatedRows: number;
  estimatedBytes: number;
  extra: Json;
}

/** One unit of snapshot work. Plain JSON, so it can sit in SQS, DynamoDB or SQLite and be delivered twice. */
export interface Job {
  flow: string;
  /** Stable id: the same range of the same flow always has the same id, so re-planning is idempotent. */
  id: string;
  /** Source table key (`schema.name`). */
  table: string;
  /** Opaque to the core: interpreted only by the source and target adapters. */
  range: Json;
  /** Where a previous attempt stopped inside the range (opaque); null to start at the range's beginning. */
  cursor: Json;
  attempt: number;
}

export type JobStatus = 'pending' | 'running' | 'done' | 'failed';

export interface JobRecord {
  flow: string;
  id: string;
  table: string;
  range: Json;
  /** Human-readable description of the range for logs and errors, e.g. `id in [1, 250001)`. */
  label: string;
  estimatedRows: number;
  status: JobStatus;
  cursor: Json;
  attempts: number;
  rows: number;
  bytes: number;
  leaseOwner?: string;
  leaseUntil?: number;
  error?: string;
  updatedAt: number;
}

/**
 * planned → snapshot → finalizing → done (mode snapshot), or → streaming ⇄ stopping → stopped (snapshot+cdc).
 * `stopping` is a request (from `ferry stop`) that the streamer drains and answers with `stopped`.
 */
export type FlowPhase = 'planned' | 'snapshot' | 'finalizing' | 'streaming' | 'stopping' | 'stopped' | 'done' | 'failed';

export interface FlowRecord {
  id: string;
  phase: FlowPhase;
  /** The validated config with secrets removed; enough to describe the flow, never to connect. */
  summary: Json;
  /** Tables of the plan: schema snapshots the finalizer needs after every job is done. */
  tables: TableSchema[];
  /**
   * The partition of every table into ranges, keyed by source table key. Stored with the flow so that a restarted
   * planner derives exactly the same jobs (a re-sampled plan could overlap the first one).
   */
  ranges: Record<string, PlannedRange[]>;
  createdAt: number;
  updatedAt: number;
  error?: string;
}

export interface PlannedRange {
  /** Opaque to the core: interpreted only by the source and target adapters. */
  range: Json;
  label: string;
  estimatedRows: number;
}

/** A replication position (LSN, resume token). Opaque to the core, ordered only by the source that made it. */
export type Position = Json;

/** The order of a source's positions: negative when `a` is before `b`, 0 when equal. Owned by the source. */
export interface PositionOrder {
  compare(a: Position, b: Position): number;
}
