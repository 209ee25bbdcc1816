import type { TableSchema } from '../../core/model.js';
import { parsePgTypeRef, type PgTypeRef } from './extra.js';

export const PG_COPY_TEXT = 'pg-copy-text';
export const PG_COPY_BINARY = 'pg-copy-binary';

/**
 * Binary COPY is faster (the target's COPY backend, the snapshot's bottleneck, parses less) but embeds type OIDs in
 * arrays and composites, which differ between databases for user-defined types (an enum[] would be refused by the
 * target). So: binary when every column's binary form is the same on any database (see binarySafe); otherwise
 * text, which is exact for every type PostgreSQL has.
 */
export function chooseFormat(table: TableSchema, accepted: readonly string[]): string {
  const portable = table.columns.every((c) => binarySafe(parsePgTypeRef(c.typeRef)));
  if (portable && accepted.includes(PG_COPY_BINARY)) return PG_COPY_BINARY;
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

/**
 * Whether a column's binary COPY form names no user-defined type's OID: built-in types; an enum (sent as its label,
 * checked against the target's labels on input); a domain over such a type (sent as its base type, its checks run
 * on input). Not arrays of user-defined types (the element OID is inside) nor composites (each field's OID), and
 * not extension or other types (their binary I/O may be missing or differ between versions).
 */
export function binarySafe(ref: PgTypeRef | null): boolean {
  if (!ref) return true;
  if (ref.array) return false;
  if (ref.def.kind === 'enum') return true;
  if (ref.def.kind === 'domain') return binarySafe(ref.def.base);
  return false;
}
