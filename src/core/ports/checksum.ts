import type { Json, TableSchema } from '../model.js';

export interface RangeChecksum {
  rows: number;
  /** Order-independent digest of the rows' values; equal on both sides when the rows are. */
  hash: string;
}

/**
 * Checksums computed inside the database, so verification moves digests, not rows. Source and target compute the
 * same digest of the same rows, and different digests (with near certainty) for different rows. `range` is a planned
 * range of the flow, or null for the whole table.
 */
export interface Checksums {
  /**
   * Names the digest (e.g. `pg-md5-rowtext-60`): two sides' checksums compare only when they name the same one.
   * Different engines compare only through a digest both compute over the same canonical values.
   */
  readonly checksumKind: string;
  checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum>;
  /**
   * Every row of the table, whatever its key. Offered where planned ranges may not cover every key: a MongoDB range
   * matches one BSON type bracket, so a document whose `_id` has a type the plan never saw (written by the stream
   * later) is in no range on either side. When a side's count differs from the sum of its ranges' rows, verify
   * compares that table whole.
   */
  count?(table: TableSchema): Promise<number>;
}
