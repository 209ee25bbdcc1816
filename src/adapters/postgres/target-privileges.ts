/**
 * What the target user must be allowed to do for a run, checked before anything is written, each refusal with the
 * statement that fixes it: CREATE on the database (Ferry creates its tables' schemas and `_ferry`), setting
 * session_replication_role (see replica-role.ts), and, for tables that already exist there, the right to write,
 * truncate and (for their indexes and constraints at finalize) own them.
 */
import type pg from 'pg';
import { tableKey, type TableSchema } from '../../core/model.js';
import { queryJson } from './catalog.js';
import { checkReplicaRole } from './replica-role.js';
import { ident, qualified } from './sql.js';

type Problem = { message: string; hint: string };

export async function targetPrivilegeProblems(client: pg.ClientBase, tables: TableSchema[], opts: { truncate: boolean }): Promise<Problem[]> {
  const out: Problem[] = [];
  const { rows } = await client.query<{ user: string; db: string; create: string; superuser: string }>(
    `SELECT current_user AS user, current_database() AS db,
            has_database_privilege(current_database(), 'CREATE')::text AS create,
            (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)::text AS superuser`,
  );
  const me = rows[0]!;
  const user = ident(me.user);
  if (me.create !== 'true') {
    out.push({
      message: `the target user ${me.user} lacks CREATE on database ${me.db} (Ferry creates schemas there: its tables' and _ferry)`,
      hint: `on the target, as its owner or a superuser: GRANT CREATE ON DATABASE ${ident(me.db)} TO ${user}`,
    });
  }
  const role = await checkReplicaRole(client);
  if (role) out.push(role);
  if (me.superuser === 'true') return out;
  // Tables that exist already: written, truncated (onExistingRows: truncate, repair) and given their indexes.
  const existing = await queryJson<{ key: string; owner: string; mine: boolean; write: boolean; truncate: boolean }>(
    client,
    `SELECT coalesce(json_agg(json_build_object('key', w, 'owner', pg_get_userbyid(c.relowner),
              'mine', pg_has_role(c.relowner, 'USAGE'),
              'write', has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE'),
              'truncate', has_table_privilege(c.oid, 'TRUNCATE'))), '[]')::text AS j
     FROM jsonb_array_elements_text($1::jsonb) w JOIN pg_class c ON c.oid = to_regclass(w)`,
    [JSON.stringify(tables.map((t) => qualified(t.target)))],
  );
  const byKey = new Map(tables.map((t) => [qualified(t.target), t]));
  for (const e of existing) {
    const t = byKey.get(e.key);
    const name = t ? tableKey(t.target) : e.key;
    if (!e.mine) {
      out.push({
        message: `target table ${name} exists and is owned by ${e.owner}; Ferry builds its indexes and constraints, which only its owner may`,
        hint: `ALTER TABLE ${e.key} OWNER TO ${user}, or drop the table so that Ferry creates it`,
      });
    } else if (!e.write || (opts.truncate && !e.truncate)) {
      out.push({ message: `the target user ${me.user} may not write to ${name}`, hint: `GRANT ALL ON ${e.key} TO ${user}` });
    }
  }
  return out;
}
