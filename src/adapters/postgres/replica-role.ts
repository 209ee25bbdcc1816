/**
 * Ferry's writes on the target run with `session_replication_role = replica`, as native logical replication's apply
 * does: the target's triggers, rules and foreign keys (ordinary ones fire only in the `origin` role) do not fire on
 * rows that the snapshot loads or the stream replays. The source already ran them, and what they wrote there
 * arrives through the copy and the stream like any other row; firing them again on the target would write audit
 * rows twice, cascade deletes the stream also carries, or refuse a child row whose parent arrives later.
 *
 * It is set with SET LOCAL inside each of Ferry's target transactions, so it never outlives them: once Ferry stops,
 * the application's own sessions fire everything as usual. Setting it needs a superuser, or on PostgreSQL 15 and
 * later `GRANT SET ON PARAMETER session_replication_role`; `checkReplicaRole` finds out before anything is written.
 */
import type pg from 'pg';
import { PreflightError } from '../../core/errors.js';
import { literal } from './sql.js';

/** Starts a transaction in which triggers and foreign keys of the target do not fire. */
export const BEGIN_AS_REPLICA = 'BEGIN; SET LOCAL session_replication_role = replica';

/** Can this session set the role? Null when it can; the problem and the exact GRANT when not. Writes nothing. */
export async function checkReplicaRole(client: pg.ClientBase): Promise<{ message: string; hint: string } | null> {
  try {
    await client.query(BEGIN_AS_REPLICA);
    return null;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    if ((err as { code?: string }).code !== '42501') throw err;
    const { rows } = await client.query<{ user: string; version: string; db: string }>(
      `SELECT current_user AS user, current_setting('server_version_num') AS version, current_database() AS db`,
    );
    return replicaRoleProblem(rows[0]!.user, Number(rows[0]!.version));
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}

function replicaRoleProblem(user: string, version: number): { message: string; hint: string } {
  const quoted = /^[a-z_][a-z0-9_]*$/.test(user) ? user : `"${user.replace(/"/g, '""')}"`;
  return {
    message:
      `the target user ${user} may not set session_replication_role, which Ferry sets to replica in its own ` +
      'transactions so that the target\'s triggers and foreign keys do not fire on copied and replayed rows',
    hint:
      version >= 150000
        ? `as a superuser on the target, run: GRANT SET ON PARAMETER session_replication_role TO ${quoted}`
        : `PostgreSQL ${Math.floor(version / 10000)} lets only superusers set it: ALTER ROLE ${quoted} SUPERUSER (on RDS or Aurora: GRANT rds_superuser TO ${quoted})`,
  };
}

/** The same problem raised later (the grant was revoked mid-flow), as an error that says what to run. */
export function replicaRoleError(err: unknown, display: string): PreflightError | undefined {
  const e = err as { code?: string; message?: string };
  if (e.code !== '42501' || !/session_replication_role/.test(e.message ?? '')) return undefined;
  return new PreflightError(
    `${display}: ${e.message}; Ferry sets session_replication_role = replica so that the target's triggers and foreign keys do not fire on its writes`,
    `as a superuser on the target: GRANT SET ON PARAMETER session_replication_role TO <the target user> (PostgreSQL 15+), or make the user a superuser`,
  );
}

