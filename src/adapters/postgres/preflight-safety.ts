/**
 * Checks that need both endpoints, or the source's privileges, run before anything is written anywhere (by
 * `ferry plan` exactly as by `ferry run`):
 *
 * - Source and target must be different databases. A config that names the same database twice would have Ferry
 *   truncate (onExistingRows: truncate) and then "copy" the source onto itself, and verify would call it
 *   identical. Same database = same cluster (system identifier from pg_control_system(), and the same postmaster
 *   start time, so that two clusters restored from one backup are told apart) and the same database OID. Two
 *   clusters with one system identifier where one is in recovery are a primary and its physical standby: writing
 *   the target would write the source, refused as well.
 * - The source user must be able to read every table (USAGE on its schema, SELECT on it) and, for snapshot+cdc,
 *   create the publication: CREATE on the database and ownership of every table it publishes (PostgreSQL requires
 *   both for CREATE PUBLICATION … FOR TABLE). The REPLICATION attribute and the rest are in replication-preflight.
 *
 * Every problem is reported at once, each with the statement that fixes it.
 */
import type pg from 'pg';
import type { EndpointConfig } from '../../config/schema.js';
import { PreflightError } from '../../core/errors.js';
import { tableKey, type TableSchema } from '../../core/model.js';
import { queryJson } from './catalog.js';
import { connect, pgEndpoint } from './connect.js';
import { publicationName } from './cdc/names.js';
import { ident, qualified } from './sql.js';

interface Identity {
  sysid: string | null;
  dboid: string;
  db: string;
  started: string;
  recovery: boolean;
}

async function identityOf(c: pg.ClientBase): Promise<Identity> {
  const { rows } = await c.query<{ dboid: string; db: string; started: string; recovery: string }>(
    `SELECT (SELECT oid::text FROM pg_database WHERE datname = current_database()) AS dboid, current_database() AS db,
            pg_postmaster_start_time()::text AS started, pg_is_in_recovery()::text AS recovery`,
  );
  // pg_control_system() may be revoked from ordinary users on managed services: then the start time decides.
  const sysid = await c
    .query<{ s: string }>(`SELECT system_identifier::text AS s FROM pg_control_system()`)
    .then((r) => r.rows[0]?.s ?? null, () => null);
  const r = rows[0]!;
  return { sysid, dboid: r.dboid, db: r.db, started: r.started, recovery: r.recovery === 'true' };
}

export function sameDatabaseProblem(s: Identity, t: Identity): string | undefined {
  const sameCluster = (s.sysid === null || t.sysid === null || s.sysid === t.sysid) && s.started === t.started;
  if (sameCluster && s.dboid === t.dboid) {
    return `source and target are the same database (${s.db} on one server): Ferry would overwrite the data it copies; point target at another database`;
  }
  if (s.sysid !== null && s.sysid === t.sysid && s.dboid === t.dboid && (s.recovery || t.recovery)) {
    return `source and target are the same database ${s.db} on a primary and its physical standby (system identifier ${s.sysid}): writing the target would write the source; point target at another database`;
  }
  return undefined;
}

async function sourcePrivilegeProblems(c: pg.ClientBase, tables: TableSchema[], cdc: boolean, flow: string): Promise<string[]> {
  const { rows } = await c.query<{ user: string; db: string; superuser: string; create: string; pub: string }>(
    `SELECT current_user AS user, current_database() AS db,
            coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)::text AS superuser,
            has_database_privilege(current_database(), 'CREATE')::text AS create,
            EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)::text AS pub`,
    [publicationName(flow)],
  );
  const me = rows[0]!;
  if (me.superuser === 'true') return [];
  const user = ident(me.user);
  const out: string[] = [];
  const facts = await queryJson<{ key: string; usage: boolean; select: boolean; owner: string; mine: boolean; unlogged: boolean }>(
    c,
    `SELECT coalesce(json_agg(json_build_object('key', w, 'usage', has_schema_privilege(c.relnamespace, 'USAGE'),
              'select', has_table_privilege(c.oid, 'SELECT'), 'owner', pg_get_userbyid(c.relowner),
              'mine', pg_has_role(c.relowner, 'USAGE'), 'unlogged', c.relpersistence = 'u')), '[]')::text AS j
     FROM jsonb_array_elements_text($1::jsonb) w JOIN pg_class c ON c.oid = to_regclass(w)`,
    [JSON.stringify(tables.map((t) => qualified(t.source)))],
  );
  const byKey = new Map(tables.map((t) => [qualified(t.source), t]));
  const notOwned: string[] = [];
  for (const f of facts) {
    const name = tableKey(byKey.get(f.key)?.source ?? { schema: '', name: f.key });
    if (!f.usage) out.push(`the source user ${me.user} lacks USAGE on the schema of ${name}: GRANT USAGE ON SCHEMA ${ident(byKey.get(f.key)!.source.schema)} TO ${user}`);
    else if (!f.select) out.push(`the source user ${me.user} may not read ${name}: GRANT SELECT ON ${f.key} TO ${user}`);
    if (cdc && !f.mine && !f.unlogged) notOwned.push(`${name} (owned by ${f.owner})`);
  }
  if (cdc && me.pub !== 'true' && me.create !== 'true') {
    out.push(`the source user ${me.user} lacks CREATE on database ${me.db}, which CREATE PUBLICATION needs: GRANT CREATE ON DATABASE ${ident(me.db)} TO ${user}`);
  }
  if (notOwned.length > 0) {
    out.push(
      `the source user ${me.user} does not own ${notOwned.sort().join(', ')}; adding a table to a publication needs its owner: ` +
        `GRANT <owner> TO ${user} (membership in the owning role is enough), or ALTER TABLE … OWNER TO ${user}`,
    );
  }
  return out;
}

/** Everything about the pair that must hold before a run writes anything anywhere. Throws a PreflightError. */
export async function checkSourceAndTarget(
  source: EndpointConfig,
  target: EndpointConfig,
  tables: TableSchema[],
  opts: { cdc: boolean; flow: string },
): Promise<void> {
  const s = await connect(pgEndpoint(source, 'source'));
  try {
    const t = await connect(pgEndpoint(target, 'target'));
    let same: string | undefined;
    try {
      same = sameDatabaseProblem(await identityOf(s), await identityOf(t));
    } finally {
      await t.end().catch(() => {});
    }
    if (same) throw new PreflightError(same, 'set target to the database you are migrating to');
    const problems = await sourcePrivilegeProblems(s, tables, opts.cdc, opts.flow);
    if (problems.length > 0) {
      throw new PreflightError(
        `the source user cannot run this flow yet (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
        'run the statements above on the source (as the tables\' owner or a superuser), then run Ferry again',
      );
    }
  } finally {
    await s.end().catch(() => {});
  }
}
