/**
 * Describe the database objects around the flow's tables (the pg_dump sections Ferry carries besides columns and
 * keys): extensions, functions, views and materialized views, triggers, rules, row security and policies, extended
 * statistics, owners, privileges, default privileges, comments, and the roles all of these name.
 *
 * What belongs to a table (trigger, policy, grant, comment...) follows the table: it is described with the target's
 * name of the table, and left out when the table is. Functions, views and types keep their source schema and name
 * (as types always have). A view is carried when every table it reads is in the flow under its own name; otherwise
 * it is left out, and the plan says which and why (rewriting a view's query for a renamed table is not attempted).
 */
import type pg from 'pg';
import { FerryError, errorMessage } from '../../core/errors.js';
import { tableKey, type TableName, type TableSchema } from '../../core/model.js';
import { queryJson } from './catalog.js';
import { parsePgTableExtra, typeDefsOf, type PgTypeDef, type PgTypeRef } from './extra.js';
import {
  RANK,
  type PgDatabaseObjects,
  type PgExtensionDef,
  type PgObject,
  type PgObjectKind,
  type PgRoleDef,
  type PgStatement,
  type PgTableShape,
} from './objects-model.js';
import * as Q from './objects-queries.js';
import { aclStatements, commentStatement, ownerStatement, rolesOf, type Acl } from './objects-sql.js';
import { ident, qualified } from './sql.js';

export interface ObjectPolicy {
  roles: 'create' | 'skip' | 'require';
  owner: 'keep' | 'target-user';
}

type Named = { name: string; comment: string | null };
type Col = { name: string; comment: string | null; acl: Acl };
type RelFacts = {
  oid: number;
  persistence: string;
  reloptions: string[] | null;
  rowSecurity: boolean;
  forceRowSecurity: boolean;
  owner: string;
  acl: Acl;
  comment: string | null;
  inherits: TableName[] | null;
  inheritedColumns: string[] | null;
  columns: Col[] | null;
  constraintComments: Named[] | null;
  indexComments: Named[] | null;
};
type TableBound = { rel: number; name: string; definition: string; enabled: string; table: string; comment: string | null };
type PolicyRow = { rel: number; name: string; command: string; permissive: boolean; roles: (string | null)[] | null; using: string | null; check: string | null; comment: string | null };
type StatRow = { rel: number; schema: string; name: string; definition: string; table: string; owner: string; comment: string | null };
type FunctionRow = { oid: number; schema: string; name: string; args: string; kind: string; definition: string | null; relations: boolean; owner: string; acl: Acl; comment: string | null };
type ViewRow = {
  oid: number; schema: string; name: string; kind: string; definition: string; reloptions: string[] | null; populated: boolean;
  owner: string; acl: Acl; comment: string | null; columns: Col[] | null; indexes: string[] | null;
  reads: { oid: number; schema: string; name: string; kind: string }[] | null;
};
type SchemaRow = { name: string; owner: string; acl: Acl; comment: string | null };
type TypeRow = { oid: number; schema: string; name: string; typtype: string; owner: string; acl: Acl; comment: string | null };
type SeqRow = { regclass: string; owner: string; acl: Acl; comment: string | null };
type DefAclRow = { role: string; schema: string | null; objtype: string; acl: Acl };
type RelOf = { oid: number; root: string; target: TableName; source: TableName };

const TRIGGER_STATE: Record<string, string> = { D: 'DISABLE', R: 'ENABLE REPLICA', A: 'ENABLE ALWAYS' };
const POLICY_CMD: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };
const DEFACL_OBJ: Record<string, string> = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS' };

class Collector {
  objects: PgObject[] = [];
  skipped: PgDatabaseObjects['skipped'] = [];
  add(kind: PgObjectKind, name: string, rank: number, tables: string[], statements: PgStatement[], section: 'pre' | 'post' = 'post') {
    if (statements.length > 0) this.objects.push({ kind, name, section, rank, tables, statements });
  }
}

/** Replace the first ` ON <table> ` / ` TO <table> ` / ` FROM <table>` of a deparsed definition with the target's name. */
function retarget(def: string, word: string, from: string, to: TableName): string {
  const needle = ` ${word} ${from}`;
  const at = def.indexOf(needle);
  return at < 0 ? def : `${def.slice(0, at)} ${word} ${qualified(to)}${def.slice(at + needle.length)}`;
}

export async function describeObjects(
  db: pg.ClientBase,
  tables: TableSchema[],
  rootOids: Map<string, number>,
  policy: ObjectPolicy,
  resolveTypes: (oids: number[]) => Promise<(oid: number) => PgTypeRef | null>,
): Promise<{ database: PgDatabaseObjects; shapes: Map<string, PgTableShape> }> {
  // A catalog query that fails says which one: the source's own error, with what Ferry was reading.
  const client = {
    query: async (sql: string, params?: unknown[]) => {
      try {
        return await db.query(sql, params);
      } catch (err) {
        const what = Object.entries(Q).find(([, v]) => v === sql)?.[0]?.toLowerCase().replace(/_/g, ' ') ?? 'partitions';
        throw new FerryError(`cannot read the source's ${what} from its catalog: ${errorMessage(err)}`);
      }
    },
  } as unknown as pg.ClientBase;
  const c = new Collector();
  const keep = policy.owner === 'keep';
  // Every relation of the flow: each table and each of its partitions, with the name it gets on the target.
  const rels = new Map<number, RelOf>();
  const partsByKey = new Map<string, TableName>();
  for (const t of tables) {
    const root = tableKey(t.source);
    rels.set(rootOids.get(root)!, { oid: rootOids.get(root)!, root, target: t.target, source: t.source });
    for (const p of parsePgTableExtra(t.extra, root).partitioning?.partitions ?? []) partsByKey.set(tableKey(p.source), p.target);
  }
  if (partsByKey.size > 0) {
    const rows = await queryJson<{ oid: number; root: number; schema: string; name: string }>(
      client,
      `SELECT coalesce(json_agg(json_build_object('oid', t.relid::int8, 'root', r::int8, 'schema', n.nspname, 'name', c.relname)), '[]')::text AS j
       FROM unnest($1::oid[]) r CROSS JOIN LATERAL pg_partition_tree(r) t JOIN pg_class c ON c.oid = t.relid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.level > 0`,
      [[...rels.keys()]],
    );
    for (const r of rows) {
      const target = partsByKey.get(tableKey(r))!;
      if (target) rels.set(r.oid, { oid: r.oid, root: rels.get(r.root)!.root, target, source: { schema: r.schema, name: r.name } });
    }
  }
  const oids = [...rels.keys()];
  const schemas = [...new Set(tables.map((t) => t.source.schema))].sort();
  const targetSchemas = new Set<string>();

  // Tables and partitions: shape, row security, owner, grants, comments.
  const shapes = new Map<string, PgTableShape>();
  // Grants and comments of columns the config excludes (`tables.<t>.excludeColumns`) have no column to go on.
  const excluded = new Map(tables.map((t) => [tableKey(t.source), new Set(t.controls?.excluded ?? [])]));
  for (const f of await queryJson<RelFacts>(client, Q.RELATION_FACTS, [oids])) {
    const rel = rels.get(f.oid)!;
    if (f.columns && excluded.get(rel.root)?.size) f.columns = f.columns.filter((col) => !excluded.get(rel.root)!.has(col.name));
    const on = qualified(rel.target);
    const name = tableKey(rel.target);
    const tabs = [rel.root];
    if (rel.root === tableKey(rel.source)) {
      shapes.set(rel.root, {
        unlogged: f.persistence === 'u',
        reloptions: f.reloptions ?? [],
        inherits: f.inherits ?? [],
        inheritedColumns: f.inheritedColumns ?? [],
      });
    }
    const rls: PgStatement[] = [];
    if (f.rowSecurity) rls.push({ sql: `ALTER TABLE ${on} ENABLE ROW LEVEL SECURITY`, roles: [] });
    if (f.forceRowSecurity) rls.push({ sql: `ALTER TABLE ${on} FORCE ROW LEVEL SECURITY`, roles: [] });
    c.add('row security', name, RANK.rowSecurity, tabs, rls);
    if (keep) c.add('owner', `table ${name}`, RANK.owner, tabs, [ownerStatement(`TABLE ${on}`, f.owner)]);
    const owner = keep ? f.owner : null;
    const grants = aclStatements(`TABLE ${on}`, f.acl, f.owner, owner);
    for (const col of f.columns ?? []) grants.push(...aclStatements(`TABLE ${on}`, col.acl, f.owner, owner, ident(col.name)));
    c.add('grant', `table ${name}`, RANK.grant, tabs, grants);
    const comments = [
      ...commentStatement(`TABLE ${on}`, f.comment),
      ...(f.columns ?? []).flatMap((col) => commentStatement(`COLUMN ${on}.${ident(col.name)}`, col.comment)),
      ...(f.constraintComments ?? []).flatMap((k) => commentStatement(`CONSTRAINT ${ident(k.name)} ON ${on}`, k.comment)),
      ...(f.indexComments ?? []).flatMap((i) => commentStatement(`INDEX ${ident(rel.target.schema)}.${ident(i.name)}`, i.comment)),
    ];
    c.add('comment', `table ${name}`, RANK.comment, tabs, comments);
  }

  for (const t of await queryJson<TableBound>(client, Q.TRIGGERS, [oids])) {
    const rel = rels.get(t.rel)!;
    const on = qualified(rel.target);
    const st: PgStatement[] = [
      { sql: `DROP TRIGGER IF EXISTS ${ident(t.name)} ON ${on}`, roles: [] },
      { sql: retarget(t.definition, 'ON', t.table, rel.target), roles: [] },
    ];
    if (TRIGGER_STATE[t.enabled]) st.push({ sql: `ALTER TABLE ${on} ${TRIGGER_STATE[t.enabled]} TRIGGER ${ident(t.name)}`, roles: [] });
    st.push(...commentStatement(`TRIGGER ${ident(t.name)} ON ${on}`, t.comment));
    c.add('trigger', `${t.name} on ${tableKey(rel.target)}`, RANK.trigger, [rel.root], st);
  }
  for (const r of await queryJson<TableBound>(client, Q.RULES, [oids])) {
    const rel = rels.get(r.rel)!;
    const on = qualified(rel.target);
    const def = retarget(r.definition.replace(/^CREATE RULE /, 'CREATE OR REPLACE RULE ').replace(/;\s*$/, ''), 'TO', r.table, rel.target);
    const st: PgStatement[] = [{ sql: def, roles: [] }];
    if (r.enabled === 'D') st.push({ sql: `ALTER TABLE ${on} DISABLE RULE ${ident(r.name)}`, roles: [] });
    st.push(...commentStatement(`RULE ${ident(r.name)} ON ${on}`, r.comment));
    c.add('rule', `${r.name} on ${tableKey(rel.target)}`, RANK.rule, [rel.root], st);
  }
  for (const p of await queryJson<PolicyRow>(client, Q.POLICIES, [oids])) {
    const rel = rels.get(p.rel)!;
    const on = qualified(rel.target);
    const roles = p.roles ?? [null];
    let sql = `CREATE POLICY ${ident(p.name)} ON ${on} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${POLICY_CMD[p.command] ?? 'ALL'}`;
    sql += ` TO ${roles.map((r) => (r === null ? 'PUBLIC' : ident(r))).join(', ')}`;
    if (p.using !== null) sql += ` USING (${p.using})`;
    if (p.check !== null) sql += ` WITH CHECK (${p.check})`;
    c.add('policy', `${p.name} on ${tableKey(rel.target)}`, RANK.policy, [rel.root], [
      { sql: `DROP POLICY IF EXISTS ${ident(p.name)} ON ${on}`, roles: [] },
      { sql, roles: rolesOf(...roles) },
      ...commentStatement(`POLICY ${ident(p.name)} ON ${on}`, p.comment),
    ]);
  }
  for (const s of await queryJson<StatRow>(client, Q.STATISTICS, [oids])) {
    const rel = rels.get(s.rel)!;
    const name = `${ident(s.schema)}.${ident(s.name)}`;
    targetSchemas.add(s.schema);
    const def = retarget(s.definition.replace(/^CREATE STATISTICS /, 'CREATE STATISTICS IF NOT EXISTS '), 'FROM', s.table, rel.target);
    c.add('statistics', `${s.schema}.${s.name}`, RANK.statistics, [rel.root], [
      { sql: def, roles: [] },
      ...(keep ? [ownerStatement(`STATISTICS ${name}`, s.owner)] : []),
      ...commentStatement(`STATISTICS ${name}`, s.comment),
    ]);
  }

  // Sequences apart from identity ones (those belong to their column): owner when shared, grants, comments.
  const seqs = new Map<string, { target: TableName; kind: string; root: string }>();
  for (const t of tables) {
    for (const s of parsePgTableExtra(t.extra).sequences) {
      if (s.kind !== 'identity') seqs.set(s.regclass, { target: s.target, kind: s.kind, root: tableKey(t.source) });
    }
  }
  if (seqs.size > 0) {
    for (const s of await queryJson<SeqRow>(client, Q.SEQUENCE_FACTS, [[...seqs.keys()]])) {
      const seq = seqs.get(s.regclass);
      if (!seq) continue;
      const on = qualified(seq.target);
      const name = `sequence ${tableKey(seq.target)}`;
      if (keep && seq.kind === 'shared') c.add('owner', name, RANK.owner, [seq.root], [ownerStatement(`SEQUENCE ${on}`, s.owner)]);
      c.add('grant', name, RANK.grant, [seq.root], aclStatements(`SEQUENCE ${on}`, s.acl, s.owner, keep ? s.owner : null));
      c.add('comment', name, RANK.comment, [seq.root], commentStatement(`SEQUENCE ${on}`, s.comment));
    }
  }

  // Functions and procedures: before the load unless their signature or body needs a table.
  for (const f of await queryJson<FunctionRow>(client, Q.FUNCTIONS, [oids, schemas])) {
    const word = f.kind === 'p' ? 'PROCEDURE' : 'FUNCTION';
    const sig = `${ident(f.schema)}.${ident(f.name)}(${f.args})`;
    const name = `${f.schema}.${f.name}(${f.args})`;
    if (f.definition === null) {
      c.skipped.push({ kind: f.kind === 'a' ? 'aggregate' : 'function', name, reason: 'Ferry does not recreate aggregates: create it on the target' });
      continue;
    }
    targetSchemas.add(f.schema);
    const kind = f.kind === 'p' ? 'procedure' : 'function';
    c.add(kind, name, f.relations ? RANK.function : 0, [], [{ sql: f.definition, roles: [] }], f.relations ? 'post' : 'pre');
    if (keep) c.add('owner', `${kind} ${name}`, RANK.owner, [], [ownerStatement(`${word} ${sig}`, f.owner)]);
    c.add('grant', `${kind} ${name}`, RANK.grant, [], aclStatements(`${word} ${sig}`, f.acl, f.owner, keep ? f.owner : null));
    c.add('comment', `${kind} ${name}`, RANK.comment, [], commentStatement(`${word} ${sig}`, f.comment));
  }

  // Views, in dependency order; one over a table outside the flow (or renamed) is left out, with what depends on it.
  const byRoot = new Map(tables.map((t) => [tableKey(t.source), t]));
  const views = await queryJson<ViewRow>(client, Q.VIEWS, [schemas]);
  const viewOids = new Map(views.map((v) => [v.oid, v]));
  const done = new Set<number>();
  const dropped = new Set<number>();
  const why = new Map<number, string>();
  for (const v of views) {
    for (const r of v.reads ?? []) {
      if (r.kind === 'v' || r.kind === 'm') {
        if (!viewOids.has(r.oid)) why.set(v.oid, `it reads view ${r.schema}.${r.name}, which is not carried`);
        continue;
      }
      const t = byRoot.get(tableKey(r));
      if (!t) why.set(v.oid, `it reads ${r.schema}.${r.name}, which is not part of this flow`);
      else if (tableKey(t.target) !== tableKey(t.source)) {
        why.set(v.oid, `it reads ${tableKey(t.source)}, which is renamed to ${tableKey(t.target)} (Ferry does not rewrite view queries)`);
      }
    }
  }
  const ordered: ViewRow[] = [];
  let progress = true;
  while (progress) {
    progress = false;
    for (const v of views) {
      if (done.has(v.oid) || dropped.has(v.oid)) continue;
      const deps = (v.reads ?? []).filter((r) => viewOids.has(r.oid) && r.oid !== v.oid).map((r) => r.oid);
      const bad = why.get(v.oid) ?? deps.map((d) => (dropped.has(d) ? `it reads view ${viewOids.get(d)!.schema}.${viewOids.get(d)!.name}, which is left out` : '')).find(Boolean);
      if (bad) {
        dropped.add(v.oid);
        c.skipped.push({ kind: v.kind === 'm' ? 'materialized view' : 'view', name: `${v.schema}.${v.name}`, reason: bad });
        progress = true;
      } else if (deps.every((d) => done.has(d))) {
        done.add(v.oid);
        ordered.push(v);
        progress = true;
      }
    }
  }
  for (const v of ordered) {
    const mat = v.kind === 'm';
    const kind = mat ? 'materialized view' : 'view';
    const on = `${ident(v.schema)}.${ident(v.name)}`;
    const name = `${v.schema}.${v.name}`;
    const tabs = [...new Set((v.reads ?? []).filter((r) => byRoot.has(tableKey(r))).map((r) => tableKey(r)))];
    targetSchemas.add(v.schema);
    const body = v.definition.trim().replace(/;$/, '');
    const opts = v.reloptions && v.reloptions.length > 0 ? ` WITH (${v.reloptions.join(', ')})` : '';
    const st: PgStatement[] = mat
      ? [{ sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${on}${opts} AS\n${body}\nWITH NO DATA`, roles: [] }]
      : [{ sql: `CREATE OR REPLACE VIEW ${on}${opts} AS\n${body}`, roles: [] }];
    if (mat && v.populated) st.push({ sql: `REFRESH MATERIALIZED VIEW ${on}`, roles: [] });
    for (const idx of v.indexes ?? []) st.push({ sql: idx.replace(/^CREATE (UNIQUE )?INDEX /, 'CREATE $1INDEX IF NOT EXISTS '), roles: [] });
    c.add(kind, name, RANK.view, tabs, st);
    const alter = mat ? 'MATERIALIZED VIEW' : 'VIEW';
    if (keep) c.add('owner', `${kind} ${name}`, RANK.owner, tabs, [ownerStatement(`${alter} ${on}`, v.owner)]);
    const owner = keep ? v.owner : null;
    const grants = aclStatements(`TABLE ${on}`, v.acl, v.owner, owner);
    for (const col of v.columns ?? []) grants.push(...aclStatements(`TABLE ${on}`, col.acl, v.owner, owner, ident(col.name)));
    c.add('grant', `${kind} ${name}`, RANK.grant, tabs, grants);
    c.add('comment', `${kind} ${name}`, RANK.comment, tabs, [
      ...commentStatement(`${alter} ${on}`, v.comment),
      ...(v.columns ?? []).flatMap((col) => commentStatement(`COLUMN ${on}.${ident(col.name)}`, col.comment)),
    ]);
  }

  // Types of the touched schemas: created even when no column uses them; owner, grants, comments.
  const typeRows = await queryJson<TypeRow>(client, Q.SCHEMA_TYPES, [schemas]);
  const refOf = await resolveTypes(typeRows.map((t) => t.oid));
  const types: PgTypeDef[] = [];
  for (const t of typeRows) {
    for (const d of typeDefsOf(refOf(t.oid))) if (!types.some((x) => x.schema === d.schema && x.name === d.name)) types.push(d);
    const word = t.typtype === 'd' ? 'DOMAIN' : 'TYPE';
    const on = `${ident(t.schema)}.${ident(t.name)}`;
    const name = `type ${t.schema}.${t.name}`;
    if (keep) c.add('owner', name, RANK.owner, [], [ownerStatement(`${word} ${on}`, t.owner)]);
    c.add('grant', name, RANK.grant, [], aclStatements(`${word} ${on}`, t.acl, t.owner, keep ? t.owner : null));
    c.add('comment', name, RANK.comment, [], commentStatement(`${word} ${on}`, t.comment));
  }

  // Schemas: the source schemas of the tables and of everything above.
  for (const t of tables) targetSchemas.add(t.target.schema);
  const extensions = await queryJson<PgExtensionDef>(client, Q.EXTENSIONS);
  for (const e of extensions) targetSchemas.add(e.schema);
  for (const d of types) targetSchemas.add(d.schema);
  const sourceSchemas = [...new Set([...schemas, ...targetSchemas])].sort();
  for (const s of await queryJson<SchemaRow>(client, Q.SCHEMAS, [sourceSchemas])) {
    if (!targetSchemas.has(s.name)) continue;
    const on = `SCHEMA ${ident(s.name)}`;
    if (keep) c.add('owner', `schema ${s.name}`, RANK.owner, [], [ownerStatement(on, s.owner)]);
    c.add('grant', `schema ${s.name}`, RANK.grant, [], aclStatements(on, s.acl, s.owner, keep ? s.owner : null));
    c.add('comment', `schema ${s.name}`, RANK.comment, [], commentStatement(on, s.comment));
  }
  for (const d of await queryJson<DefAclRow>(client, Q.DEFAULT_ACLS, [schemas])) {
    const prefix = `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(d.role)}${d.schema ? ` IN SCHEMA ${ident(d.schema)}` : ''} `;
    const objs = DEFACL_OBJ[d.objtype] ?? 'TABLES';
    let st = aclStatements(objs, d.acl, d.role, d.role);
    if (d.schema) st = st.filter((s) => !s.sql.startsWith('REVOKE') || s.sql.endsWith(' CASCADE')); // a schema's entries only add to the global ones
    c.add('default privileges', `for ${d.role}${d.schema ? ` in ${d.schema}` : ''} on ${objs.toLowerCase()}`, RANK.defaultPrivileges, [],
      st.map((s) => ({ sql: prefix + s.sql, roles: [...new Set([...rolesOf(d.role), ...s.roles])] })));
  }

  // Roles: every one a statement names, and the roles those belong to (members after what they belong to).
  const named = [...new Set(c.objects.flatMap((o) => o.statements.flatMap((s) => s.roles)))];
  const roleRows = named.length ? await queryJson<PgRoleDef>(client, Q.ROLES, [named]) : [];
  const roleDefs: PgRoleDef[] = [];
  const placed = new Set<string>();
  for (let guard = 0; roleDefs.length < roleRows.length && guard <= roleRows.length; guard++) {
    for (const r of roleRows) {
      if (placed.has(r.name)) continue;
      if ((r.memberOf ?? []).every((m) => placed.has(m.role) || !roleRows.some((x) => x.name === m.role))) {
        placed.add(r.name);
        roleDefs.push(r);
      }
    }
  }

  return {
    database: {
      version: 1,
      roles: policy.roles,
      owner: policy.owner,
      schemas: [...targetSchemas].sort(),
      extensions,
      types,
      roleDefs,
      objects: c.objects,
      skipped: c.skipped,
    },
    shapes,
  };
}
