/**
 * Catalog queries for the database objects around the tables (see objects.ts). Same conventions as
 * introspect-queries.ts: one row, one text column `j` with a JSON array, run with `search_path = ''` so every
 * deparsed name is qualified. They use only catalog columns present in PostgreSQL 14 and later (15 and 18 are tested).
 *
 * `$1` is an `oid[]` of the flow's relations (tables and their partitions); `$2` a `text[]` of the source schemas
 * the flow touches, unless said otherwise.
 */

const qual = (nsp: string, rel: string) => `quote_ident(${nsp}) || '.' || quote_ident(${rel})`;
const notExtensionMember = (cls: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${cls}'::regclass AND e.objid = ${oid}
               AND e.refclassid = 'pg_extension'::regclass AND e.deptype = 'e')`;

/**
 * An ACL as a list of {grantee (null: PUBLIC), privilege, grantable} in aclitem order, and `all`: every privilege
 * the owner holds by default for this kind of object (to print ALL, as pg_dump does, which stays complete across
 * versions that add privileges). Null when the ACL is the built-in default.
 */
export const aclJson = (acl: string, kind: string, owner: string) => `CASE WHEN ${acl} IS NOT NULL THEN json_build_object(
  'items', coalesce((SELECT json_agg(json_build_object('grantee', CASE WHEN x.grantee = 0 THEN NULL ELSE pg_get_userbyid(x.grantee) END,
                     'privilege', x.privilege_type, 'grantable', x.is_grantable) ORDER BY x.n)
            FROM aclexplode(${acl}) WITH ORDINALITY x(grantor, grantee, privilege_type, is_grantable, n)), '[]'),
  'all', (SELECT json_agg(dflt.privilege_type) FROM aclexplode(acldefault(${kind}, ${owner})) dflt WHERE dflt.grantee = ${owner})) END`;

const comment = (oid: string, cls: string, sub = '0') =>
  `(SELECT description FROM pg_description WHERE objoid = ${oid} AND classoid = '${cls}'::regclass AND objsubid = ${sub})`;

/** Tables and partitions: storage facts, inheritance, row security, owner, privileges and comments. */
export const RELATION_FACTS = `
SELECT coalesce(json_agg(json_build_object(
  'oid', c.oid::int8, 'persistence', c.relpersistence::text, 'reloptions', c.reloptions,
  'rowSecurity', c.relrowsecurity, 'forceRowSecurity', c.relforcerowsecurity, 'owner', pg_get_userbyid(c.relowner),
  'acl', ${aclJson('c.relacl', "'r'", 'c.relowner')}, 'comment', ${comment('c.oid', 'pg_class')},
  'inherits', (SELECT json_agg(json_build_object('schema', pn.nspname, 'name', p.relname) ORDER BY i.inhseqno)
               FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
               WHERE i.inhrelid = c.oid AND NOT c.relispartition),
  'inheritedColumns', (SELECT json_agg(a.attname) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                       AND NOT a.attisdropped AND NOT a.attislocal),
  'columns', (SELECT json_agg(json_build_object('name', a.attname, 'comment', ${comment('a.attrelid', 'pg_class', 'a.attnum')},
                'acl', ${aclJson('a.attacl', "'c'", 'c.relowner')}) ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                AND (a.attacl IS NOT NULL OR EXISTS (SELECT 1 FROM pg_description d WHERE d.objoid = a.attrelid
                     AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum))),
  'constraintComments', (SELECT json_agg(json_build_object('name', k.conname, 'comment', d.description))
                         FROM pg_constraint k JOIN pg_description d ON d.objoid = k.oid AND d.classoid = 'pg_constraint'::regclass
                         WHERE k.conrelid = c.oid),
  'indexComments', (SELECT json_agg(json_build_object('name', ic.relname, 'comment', d.description))
                    FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid
                    JOIN pg_description d ON d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
                    WHERE x.indrelid = c.oid))), '[]')::text AS j
FROM pg_class c WHERE c.oid = ANY($1::oid[])`;

/** User triggers (not those behind foreign keys, not the clones a partitioned table's trigger makes). */
export const TRIGGERS = `
SELECT coalesce(json_agg(json_build_object('rel', t.tgrelid::int8, 'name', t.tgname, 'definition', pg_get_triggerdef(t.oid),
  'enabled', t.tgenabled::text, 'table', ${qual('n.nspname', 'c.relname')}, 'comment', ${comment('t.oid', 'pg_trigger')})
  ORDER BY t.tgrelid, t.tgname), '[]')::text AS j
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE t.tgrelid = ANY($1::oid[]) AND NOT t.tgisinternal AND t.tgparentid = 0`;

export const RULES = `
SELECT coalesce(json_agg(json_build_object('rel', r.ev_class::int8, 'name', r.rulename, 'definition', pg_get_ruledef(r.oid),
  'enabled', r.ev_enabled::text, 'table', ${qual('n.nspname', 'c.relname')}, 'comment', ${comment('r.oid', 'pg_rewrite')})
  ORDER BY r.ev_class, r.rulename), '[]')::text AS j
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE r.ev_class = ANY($1::oid[]) AND r.rulename <> '_RETURN'`;

export const POLICIES = `
SELECT coalesce(json_agg(json_build_object('rel', p.polrelid::int8, 'name', p.polname, 'command', p.polcmd::text,
  'permissive', p.polpermissive,
  'roles', (SELECT json_agg(CASE WHEN r = 0 THEN NULL ELSE pg_get_userbyid(r) END ORDER BY o) FROM unnest(p.polroles) WITH ORDINALITY u(r, o)),
  'using', pg_get_expr(p.polqual, p.polrelid), 'check', pg_get_expr(p.polwithcheck, p.polrelid),
  'comment', ${comment('p.oid', 'pg_policy')})
  ORDER BY p.polrelid, p.polname), '[]')::text AS j
FROM pg_policy p WHERE p.polrelid = ANY($1::oid[])`;

export const STATISTICS = `
SELECT coalesce(json_agg(json_build_object('rel', s.stxrelid::int8, 'schema', n.nspname, 'name', s.stxname,
  'definition', pg_get_statisticsobjdef(s.oid), 'table', ${qual('tn.nspname', 'c.relname')},
  'owner', pg_get_userbyid(s.stxowner), 'comment', ${comment('s.oid', 'pg_statistic_ext')})
  ORDER BY s.stxrelid, s.stxname), '[]')::text AS j
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
JOIN pg_class c ON c.oid = s.stxrelid JOIN pg_namespace tn ON tn.oid = c.relnamespace
WHERE s.stxrelid = ANY($1::oid[])`;

/** Extensions other than plpgsql (which every database has). No parameters. */
export const EXTENSIONS = `
SELECT coalesce(json_agg(json_build_object('name', e.extname, 'version', e.extversion, 'schema', n.nspname)
  ORDER BY e.extname), '[]')::text AS j
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'`;

/**
 * Functions and procedures in the touched schemas, and the trigger functions of the flow's tables wherever they
 * live. `relations`: the function's signature or body names a table, view or row type, so it is created after the
 * tables (a function Ferry cannot deparse, an aggregate, comes back with definition null).
 */
export const FUNCTIONS = `
SELECT coalesce(json_agg(json_build_object('oid', p.oid::int8, 'schema', n.nspname, 'name', p.proname,
  'args', pg_get_function_identity_arguments(p.oid), 'kind', p.prokind::text,
  'definition', CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END,
  'relations', p.prosqlbody IS NOT NULL OR EXISTS (
     SELECT 1 FROM pg_depend d LEFT JOIN pg_type t ON d.refclassid = 'pg_type'::regclass AND t.oid = d.refobjid
     LEFT JOIN pg_type et ON et.oid = t.typelem
     WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
       AND (d.refclassid = 'pg_class'::regclass OR t.typrelid <> 0 OR et.typrelid <> 0)),
  'owner', pg_get_userbyid(p.proowner), 'acl', ${aclJson('p.proacl', "'f'", 'p.proowner')},
  'comment', ${comment('p.oid', 'pg_proc')}) ORDER BY n.nspname, p.proname, p.oid), '[]')::text AS j
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.oid >= 16384 AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_ferry')
  AND (n.nspname = ANY($2::text[]) OR p.oid IN (SELECT tgfoid FROM pg_trigger WHERE tgrelid = ANY($1::oid[])))
  AND ${notExtensionMember('pg_proc', 'p.oid')}`;

/**
 * `$1`: text[] of schema names. Views and materialized views of those schemas, with the relations their query reads (a partition is
 * reported as its partitioned root, which is what the flow knows).
 */
export const VIEWS = `
SELECT coalesce(json_agg(json_build_object('oid', c.oid::int8, 'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::text,
  'definition', pg_get_viewdef(c.oid), 'reloptions', c.reloptions, 'populated', c.relispopulated,
  'owner', pg_get_userbyid(c.relowner), 'acl', ${aclJson('c.relacl', "'r'", 'c.relowner')}, 'comment', ${comment('c.oid', 'pg_class')},
  'columns', (SELECT json_agg(json_build_object('name', a.attname, 'comment', ${comment('a.attrelid', 'pg_class', 'a.attnum')},
                'acl', ${aclJson('a.attacl', "'c'", 'c.relowner')}) ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                AND (a.attacl IS NOT NULL OR EXISTS (SELECT 1 FROM pg_description d WHERE d.objoid = a.attrelid
                     AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum))),
  'indexes', (SELECT json_agg(pg_get_indexdef(x.indexrelid) ORDER BY ic.relname) FROM pg_index x
              JOIN pg_class ic ON ic.oid = x.indexrelid WHERE x.indrelid = c.oid),
  'reads', (SELECT json_agg(DISTINCT jsonb_build_object('oid', rr.oid::int8, 'schema', rn.nspname, 'name', rr.relname, 'kind', rr.relkind::text))
            FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                 AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid
            JOIN pg_class rc ON rc.oid = d.refobjid
            JOIN pg_class rr ON rr.oid = CASE WHEN rc.relispartition THEN pg_partition_root(rc.oid) ELSE rc.oid END
            JOIN pg_namespace rn ON rn.oid = rr.relnamespace
            WHERE r.ev_class = c.oid)) ORDER BY n.nspname, c.relname), '[]')::text AS j
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('v', 'm') AND n.nspname = ANY($1::text[]) AND ${notExtensionMember('pg_class', 'c.oid')}`;

/** `$1`: text[] of schema names. */
export const SCHEMAS = `
SELECT coalesce(json_agg(json_build_object('name', n.nspname, 'owner', pg_get_userbyid(n.nspowner),
  'acl', ${aclJson('n.nspacl', "'n'", 'n.nspowner')}, 'comment', ${comment('n.oid', 'pg_namespace')}) ORDER BY n.nspname), '[]')::text AS j
FROM pg_namespace n WHERE n.nspname = ANY($1::text[])`;

/** `$1`: text[] of schema names. Enums, domains and composite types Ferry can create, not from extensions. */
export const SCHEMA_TYPES = `
SELECT coalesce(json_agg(json_build_object('oid', t.oid::int8, 'schema', n.nspname, 'name', t.typname, 'typtype', t.typtype::text,
  'owner', pg_get_userbyid(t.typowner), 'acl', ${aclJson('t.typacl', "'T'", 't.typowner')}, 'comment', ${comment('t.oid', 'pg_type')})
  ORDER BY n.nspname, t.typname), '[]')::text AS j
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = ANY($1::text[]) AND t.oid >= 16384
  AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
  AND ${notExtensionMember('pg_type', 't.oid')}`;

/** `$1`: text[] of sequence regclass texts. */
export const SEQUENCE_FACTS = `
SELECT coalesce(json_agg(json_build_object('regclass', s.oid::regclass::text, 'owner', pg_get_userbyid(s.relowner),
  'acl', ${aclJson('s.relacl', "'s'", 's.relowner')}, 'comment', ${comment('s.oid', 'pg_class')})), '[]')::text AS j
FROM pg_class s WHERE s.oid = ANY($1::text[]::regclass[])`;

/** `$1`: text[] of schema names. Default privileges for the whole database (schema null) or one of these schemas. */
export const DEFAULT_ACLS = `
SELECT coalesce(json_agg(json_build_object('role', pg_get_userbyid(d.defaclrole), 'schema', n.nspname,
  'objtype', d.defaclobjtype::text,
  'acl', ${aclJson('d.defaclacl', `(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END)::"char"`, 'd.defaclrole')})), '[]')::text AS j
FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
WHERE d.defaclnamespace = 0 OR n.nspname = ANY($1::text[])`;

/**
 * `$1`: text[] of role names. Those roles and every role they are members of (what CREATE ROLE and GRANT role
 * need), without the predefined pg_* roles, which every cluster has.
 */
export const ROLES = `
WITH RECURSIVE wanted(oid) AS (
  SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[])
  UNION SELECT m.roleid FROM pg_auth_members m JOIN wanted w ON w.oid = m.member
)
SELECT coalesce(json_agg(json_build_object('name', r.rolname, 'superuser', r.rolsuper, 'inherit', r.rolinherit,
  'createRole', r.rolcreaterole, 'createDb', r.rolcreatedb, 'login', r.rolcanlogin, 'replication', r.rolreplication,
  'bypassRls', r.rolbypassrls, 'connectionLimit', r.rolconnlimit, 'validUntil', r.rolvaliduntil::text,
  'memberOf', (SELECT json_agg(json_build_object('role', pg_get_userbyid(m.roleid), 'admin', m.admin_option)
               ORDER BY pg_get_userbyid(m.roleid)) FROM pg_auth_members m WHERE m.member = r.oid
               AND pg_get_userbyid(m.roleid) NOT LIKE 'pg\\_%'))
  ORDER BY r.rolname), '[]')::text AS j
FROM pg_roles r JOIN wanted w ON w.oid = r.oid WHERE r.rolname NOT LIKE 'pg\\_%'`;
