import type { TableSchema } from '../../core/model.js';

export const PG_COPY_TEXT = 'pg-copy-text';
export const PG_COPY_BINARY = 'pg-copy-binary';

/**
 * Binary COPY is faster but embeds type OIDs in arrays and composites, which differ between databases for
 * user-defined types (an enum[] would be refused by the target). So: binary only when every column has a built-in
 * type; otherwise text, which is exact for every type PostgreSQL has.
 */
export function chooseFormat(table: TableSchema, accepted: readonly string[]): string {
  const builtinOnly = table.columns.every((c) => c.typeRef === undefined || c.typeRef === null);
  if (builtinOnly && accepted.includes(PG_COPY_BINARY)) return PG_COPY_BINARY;
  if (accepted.includes(PG_COPY_TEXT)) return PG_COPY_TEXT;
  throw new Error(`the target accepts none of the PostgreSQL COPY formats (it accepts ${accepted.join(', ')})`);
}

export function copyOptions(format: string): string {
  return format === PG_COPY_BINARY ? '(FORMAT binary)' : '';
}

/** Columns that carry data: stored generated columns are recomputed by the target. */
export function copiedColumns(table: TableSchema): string[] {
  return table.columns.filter((c) => !c.generated).map((c) => c.name);
}
