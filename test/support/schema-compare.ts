/**
 * Schema comparisons for the fidelity tests: `pg_dump --schema-only` (PostgreSQL 15 only: no pg_dump 18 exists on
 * these machines, and pg_dump 15 refuses a newer server), and a catalog comparison that works across versions:
 * one normalized line per object fact (its pg_get_*def or catalog row), sorted. Both leave out Ferry's `_ferry`
 * schema and objects that belong to an extension (they come with CREATE EXTENSION).
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { rawTypes } from '../../src/adapters/postgres/connect.js';
import { PG15_BIN } from './pg15.js';

const USER_NS = `n.nspname NOT IN ('pg_catalog', 'information_schema', '_ferry', 'pg_toast') AND n.nspname NOT LIKE 'pg\\_temp%'`;
const notExt = (cls: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${cls}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;
/** In ACL order (as pg_dump prints it). MAINTAIN (PostgreSQL 17+) is part of ALL on a newer server: left out so 15 and 18 compare. */
const acl = (a: string) => `(SELECT string_agg(CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END || ':' ||
  x.privilege_type || CASE WHEN x.is_grantable THEN '*' ELSE '' END || '/' || pg_get_userbyid(x.grantor), ',' ORDER BY x.n)
  FROM aclexplode(${a}) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, n) WHERE x.privilege_type <> 'MAINTAIN')`;

/**
 * Each query returns one text column `l`: one line per fact. Version differences normalized here: MAINTAIN (above);
 * a partition's copy of its parent's identity (PostgreSQL 17+ records it on the partition, 15 does not; the
 * parent's identity is compared).
 */
const QUERIES = [
  `SELECT 'extension ' || extname || ' in ' || extnamespace::regnamespace AS l FROM pg_extension`,
  `SELECT 'schema ' || n.nspname || ' owner ' || pg_get_userbyid(n.nspowner) || ' acl ' || coalesce(${acl('n.nspacl')}, '-') AS l
   FROM pg_namespace n WHERE ${USER_NS}`,
  `SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text ||
     ' owner ' || pg_get_userbyid(c.relowner) || ' options ' || coalesce(array_to_string(c.reloptions, ','), '-') ||
     ' rls ' || c.relrowsecurity || '/' || c.relforcerowsecurity || ' populated ' || c.relispopulated ||
     ' acl ' || coalesce(${acl('c.relacl')}, '-') ||
     ' partkey ' || coalesce(pg_get_partkeydef(c.oid), '-') || ' bound ' || coalesce(pg_get_expr(c.relpartbound, c.oid), '-') ||
     ' inherits ' || coalesce((SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid), '-') AS l
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND ${notExt('pg_class', 'c.oid')}`,
  `SELECT 'column ' || c.oid::regclass || '.' || a.attname || ' #' || a.attnum || ' ' || format_type(a.atttypid, a.atttypmod) ||
     ' notnull ' || a.attnotnull || ' local ' || a.attislocal || ' identity ' || CASE WHEN c.relispartition THEN '(partition)' ELSE a.attidentity::text END || ' generated ' || a.attgenerated::text ||
     ' default ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-') || ' collation ' || a.attcollation::regcollation ||
     ' acl ' || coalesce(${acl('a.attacl')}, '-') AS l
   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE ${USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c') AND a.attnum > 0 AND NOT a.attisdropped AND ${notExt('pg_class', 'c.oid')}`,
  `SELECT 'constraint ' || coalesce(k.conrelid::regclass::text, k.contypid::regtype::text) || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid) ||
     ' local ' || k.conislocal AS l
   FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE ${USER_NS} AND k.contype <> 'n'`,
  `SELECT 'index ' || pg_get_indexdef(x.indexrelid) AS l FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_NS}`,
  `SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text AS l FROM pg_trigger t
   JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_NS} AND NOT t.tgisinternal`,
  `SELECT 'rule ' || pg_get_ruledef(r.oid) || ' enabled ' || r.ev_enabled::text AS l FROM pg_rewrite r
   JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_NS} AND r.rulename <> '_RETURN'`,
  `SELECT 'view ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid) AS l FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE ${USER_NS} AND c.relkind IN ('v', 'm')`,
  `SELECT 'policy ' || p.polname || ' on ' || p.polrelid::regclass || ' ' || p.polcmd::text || ' ' || p.polpermissive || ' to ' ||
     (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1) FROM unnest(p.polroles) r) ||
     ' using ' || coalesce(pg_get_expr(p.polqual, p.polrelid), '-') || ' check ' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '-') AS l
   FROM pg_policy p`,
  `SELECT 'statistics ' || pg_get_statisticsobjdef(s.oid) || ' owner ' || pg_get_userbyid(s.stxowner) AS l FROM pg_statistic_ext s`,
  `SELECT 'function ' || pg_get_functiondef(p.oid) || ' owner ' || pg_get_userbyid(p.proowner) || ' acl ' || coalesce(${acl('p.proacl')}, '-') AS l
   FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${USER_NS} AND p.prokind <> 'a' AND ${notExt('pg_proc', 'p.oid')}`,
  `SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text || ' owner ' || pg_get_userbyid(t.typowner) || ' acl ' || coalesce(${acl('t.typacl')}, '-') ||
     ' base ' || format_type(t.typbasetype, t.typtypmod) || ' labels ' ||
     coalesce((SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '-') AS l
   FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE ${USER_NS} AND t.typtype IN ('e', 'd', 'c', 'r')
     AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') AND ${notExt('pg_type', 't.oid')}`,
  `SELECT 'sequence ' || s.seqrelid::regclass || ' ' || format_type(s.seqtypid, NULL) || ' ' || s.seqstart || ' ' || s.seqincrement || ' ' ||
     s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle AS l FROM pg_sequence s`,
  `SELECT 'default acl ' || pg_get_userbyid(d.defaclrole) || ' in ' || coalesce(d.defaclnamespace::regnamespace::text, '-') || ' on ' ||
     d.defaclobjtype::text || ' ' || coalesce(${acl('d.defaclacl')}, '-') AS l FROM pg_default_acl d`,
  `SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description AS l FROM pg_description d
   WHERE d.objoid >= 16384 AND d.classoid <> 'pg_extension'::regclass
     AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e')
     AND pg_describe_object(d.classoid, d.objoid, d.objsubid) NOT LIKE '%_ferry.%' AND pg_describe_object(d.classoid, d.objoid, d.objsubid) <> 'schema _ferry'`,
];

/** Roles: the given ones, with their attributes and memberships among them. */
const ROLE_QUERY = `
SELECT 'role ' || r.rolname || ' super ' || r.rolsuper || ' inherit ' || r.rolinherit || ' createrole ' || r.rolcreaterole ||
  ' createdb ' || r.rolcreatedb || ' login ' || r.rolcanlogin || ' replication ' || r.rolreplication || ' bypassrls ' || r.rolbypassrls ||
  ' connlimit ' || r.rolconnlimit || ' member of ' ||
  coalesce((SELECT string_agg(pg_get_userbyid(m.roleid) || CASE WHEN m.admin_option THEN '*' ELSE '' END, ',' ORDER BY 1)
            FROM pg_auth_members m WHERE m.member = r.oid), '-') AS l
FROM pg_roles r WHERE r.rolname = ANY($1::text[])`;

/**
 * Across major versions the deparser prints the same view differently (18 leaves out the `table.` qualifier of a
 * column when the query reads one relation): for a cross-version comparison, drop simple qualifiers in view lines.
 */
export function crossVersion(lines: string[]): string[] {
  return lines.map((l) => (l.startsWith('view ') ? l.replace(/(?<![\w".])[a-z_][a-z0-9_]*\.(?=[a-z_"])/g, '') : l)).sort();
}

export async function catalogLines(url: string, roles: string[]): Promise<string[]> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  await c.connect();
  try {
    await c.query(`SET search_path = ''`);
    const out: string[] = [];
    for (const q of [...QUERIES, ROLE_QUERY]) {
      const res = await c.query<{ l: string | null }>(q, q === ROLE_QUERY ? [roles] : []);
      for (const r of res.rows) out.push(r.l ?? `(null line from: ${q.slice(0, 60)})`);
    }
    return out.sort();
  } finally {
    await c.end();
  }
}

/** `pg_dump --schema-only` of a PostgreSQL 15 database, without `_ferry` and with the random \restrict key blanked. */
export function pgDump15(url: string): string[] {
  const out = execFileSync(join15('pg_dump'), ['--schema-only', '--exclude-schema=_ferry', '--dbname', url], { maxBuffer: 64 << 20 }).toString();
  return normalizeDump(out);
}

/** `pg_dumpall --roles-only` (no passwords: Ferry never copies them), limited to the given roles' lines. */
export function pgDumpRoles15(url: string, roles: string[]): string[] {
  const out = execFileSync(join15('pg_dumpall'), ['--roles-only', '--no-role-passwords', '--dbname', url]).toString();
  return normalizeDump(out).filter((l) => roles.some((r) => new RegExp(`\\b${r}\\b`).test(l)));
}

function join15(bin: string): string {
  return `${PG15_BIN}/${bin}`;
}

function normalizeDump(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/^\\(un)?restrict \S+$/, '\\$1restrict KEY'))
    .filter((l) => l.trim() !== '');
}

/** "0 differing lines", or the count and a diff (- only in source, + only in target). */
export function diffReport(source: string[], target: string[]): string {
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const s = count(source);
  const t = count(target);
  const lines: string[] = [];
  for (const [l, n] of s) for (let i = 0; i < n - (t.get(l) ?? 0); i++) lines.push(`- ${l}`);
  for (const [l, n] of t) for (let i = 0; i < n - (s.get(l) ?? 0); i++) lines.push(`+ ${l}`);
  return `${lines.length} differing lines${lines.length ? `:\n${lines.join('\n')}` : ''}`;
}

/** Row count and md5 of the ordered rows of each relation, for data equality. */
export async function dataChecksums(url: string, relations: string[]): Promise<string[]> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  await c.connect();
  try {
    const out: string[] = [];
    for (const r of relations) {
      const res = await c.query<{ n: string; h: string | null }>(
        `SELECT count(*)::text AS n, md5(string_agg(x::text, E'\\n' ORDER BY x::text)) AS h FROM ${r} x`,
      );
      out.push(`${r}: ${res.rows[0]!.n} rows, md5 ${res.rows[0]!.h}`);
    }
    return out;
  } finally {
    await c.end();
  }
}
