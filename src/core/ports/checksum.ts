import type { Json, TableSchema } from '../model.js';

export interface RangeChecksum {
  rows: number;
  /** Order-independent digest of the rows' values; equal on both sides when the rows are. */
  hash: string;
}

/**
 * Checksums computed inside the database, so verification moves digests, not rows. Source and target compute the
 * same digest of the same rows. `range` is a planned range of the flow, or null for the whole table.
 */
export interface Checksums {
  checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum>;
}
