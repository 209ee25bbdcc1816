import type { TableSchema } from '../model.js';

/** Columns that carry data in a snapshot row (stored generated columns are recomputed by the target). */
export function copiedColumnsOf(table: TableSchema): string[] {
  return table.columns.filter((c) => !c.generated).map((c) => c.name);
}
