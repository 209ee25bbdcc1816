/**
 * Conversion between engines' value encodings (capabilities.ts `ValueEncoding`), put between a source and a target
 * whose encodings differ by the composition root. Implementations live in src/core/codec (pure, no driver); the
 * PostgreSQL → PostgreSQL path has none (same encoding: values pass through untouched).
 *
 * Codecs are pure and synchronous per row: no I/O, no state between calls other than what the schema gives, so a
 * replayed change converts to the same result. A value that cannot be represented on the target throws a FerryError
 * naming table, column and value (never a silent approximation).
 */
import type { TableSchema } from '../model.js';
import type { Change, RowImage } from './change-source.js';
import type { ValueEncoding } from './capabilities.js';
import type { RowStream } from './source.js';

export interface RowCodec {
  readonly from: ValueEncoding;
  readonly to: ValueEncoding;
  /**
   * The table as the target engine will hold it: column types in the target's type text, key, `extra` rebuilt for
   * the target engine (the source's `extra` is only meaningful to its own engine). Called at plan time; the result
   * is what the flow records and what `row`/`change` receive.
   */
  schema(table: TableSchema): TableSchema;
  /** One row image (`table` from `schema`); absent columns stay absent (they mean "unchanged"). */
  row(table: TableSchema, row: RowImage): RowImage;
}

export interface ChangeCodec extends RowCodec {
  /** One change; `table` resolves a source table key (`schema.name`) to its converted schema. */
  change(change: Change, table: (key: string) => TableSchema | undefined): Change;
}

/** Converts snapshot rows in transit from one RowStream format to another (e.g. `mongo-bson-docs` → `pg-copy-text`). */
export interface RowStreamCodec {
  /** Source formats it reads, best first. */
  readonly from: readonly string[];
  /** The format it produces. */
  readonly to: string;
  /** Streamed: bounded memory whatever the range's size; errors of either side destroy the other. */
  convert(table: TableSchema, rows: RowStream): RowStream;
}
