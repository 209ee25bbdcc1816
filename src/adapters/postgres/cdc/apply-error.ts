/**
 * A PostgreSQL error raised while applying a change, turned into an error a user can act on: which table, which
 * operation (and key), at which source position, and the database's own message and code. Connection-level failures
 * pass through unchanged: they are for the stream's supervisor to retry, not the user's to fix.
 */
import { ApplyError, FerryError } from '../../../core/errors.js';
import type { Position, TableSchema } from '../../../core/model.js';
import type { Change } from '../../../core/ports/change-source.js';

/** SQLSTATE classes that say nothing about the change itself: connection, shutdown, resources, transient conflicts. */
const TRANSIENT = new Set(['08', '57', '53', '40', '58']);

/** Is this the database refusing a statement (rather than a lost connection or a transient conflict)? */
export function refusedByDatabase(err: unknown): boolean {
  if (err instanceof FerryError) return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !TRANSIENT.has(code.slice(0, 2));
}

export function applyError(
  err: unknown,
  change: Change | undefined,
  table: TableSchema | undefined,
  at: Position | { after: Position | undefined },
): unknown {
  if (!refusedByDatabase(err)) return err;
  const e = err as { code: string; message?: string; detail?: string };
  const where =
    at !== null && typeof at === 'object' && !Array.isArray(at) && 'after' in at
      ? at.after === undefined
        ? 'in the first source transactions this flow streams (none applied yet)'
        : `in a source transaction after position ${String(at.after)}`
      : `in the source transaction at position ${String(at)}`;
  const op = change ? change.op.toUpperCase() : 'change';
  const name = change ? (change.op === 'truncate' ? change.tables.join(', ') : change.table) : 'a table';
  const key = change && table ? keyText(change, table) : '';
  const detail = e.detail ? ` (${e.detail})` : '';
  return new ApplyError(
    `the target refused ${op} of ${name}${key} ${where}: ${e.message ?? String(err)}${detail} [SQLSTATE ${e.code}]`,
    e.code.startsWith('23')
      ? 'the target table holds rows or constraints the source does not: compare it with the source (`ferry verify`), fix the target, and run again (streaming resumes from the last committed position)'
      : 'fix the cause on the target and run again: streaming resumes from the last committed position',
    name,
    op,
    e.code,
  );
}

function keyText(change: Change, table: TableSchema): string {
  if (change.op === 'truncate' || table.primaryKey.length === 0) return '';
  const image = change.op === 'delete' ? change.old : change.op === 'update' && change.old ? change.old : change.row;
  const parts = table.primaryKey.map((c) => `${c}=${image[c] ?? 'NULL'}`);
  return ` (key ${parts.join(', ')}${change.op === 'update' || change.op === 'insert' ? ', or a change merged with it' : ''})`;
}
