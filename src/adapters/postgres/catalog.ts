/** Small helpers for reading the catalog through a client whose type parsers may return everything as text. */
import type pg from 'pg';

/** Run a query whose single row has a text column `j` holding a JSON array (see introspect-queries.ts). */
export async function queryJson<T>(client: pg.ClientBase, sql: string, params: unknown[] = []): Promise<T[]> {
  const res = await client.query<{ j: string }>(sql, params);
  const j = res.rows[0]?.j;
  return j ? (JSON.parse(j) as T[]) : [];
}

/**
 * Run `fn` with an empty search_path, then put the caller's back. With nothing but pg_catalog visible, the
 * catalog's deparsing functions qualify every other name, so what they print can be replayed on another database
 * whatever its search_path is. Session-level (not SET LOCAL) so it works inside or outside a transaction.
 */
export async function withEmptySearchPath<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  const res = await client.query<{ p: string }>(`SELECT current_setting('search_path') AS p`);
  const previous = res.rows[0]?.p ?? '"$user", public';
  await client.query(`SELECT set_config('search_path', '', false)`);
  try {
    return await fn();
  } finally {
    // In an aborted transaction this fails, and the rollback restores the old value anyway.
    await client.query(`SELECT set_config('search_path', $1, false)`, [previous]).catch(() => {});
  }
}
