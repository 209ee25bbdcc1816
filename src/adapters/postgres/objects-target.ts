/**
 * Carrying the database objects onto the target: roles and extensions first, functions before the load, the
 * rest at finalize (see objects.ts for what is described and objects-model.ts for the shape). Every statement is
 * idempotent (IF NOT EXISTS, OR REPLACE, DROP ... IF EXISTS then CREATE, GRANT), so a rerun of a failed finalize
 * starts over safely.
 */
import type pg from 'pg';
import { PreflightError } from '../../core/errors.js';
import { queryJson } from './catalog.js';
import type { TablePlan } from './ddl.js';
import type { PgDatabaseObjects, PgObject, PgRoleDef } from './objects-model.js';
import { ident, literal } from './sql.js';

export type Problem = { message: string; hint: string };

/** The plan's database objects, keeping only those whose tables are all in `plans`. Null for an old plan. */
export function databaseOf(plans: TablePlan[]): PgDatabaseObjects | null {
  const db = plans.map((p) => p.extra.database).find((d) => d !== undefined);
  if (!db) return null;
  const keys = new Set(plans.map((p) => p.key));
  return { ...db, objects: db.objects.filter((o) => o.tables.every((t) => keys.has(t))) };
}

/** Objects of one section in execution order (stable: equal ranks keep dependency order). */
export function sectionOf(db: PgDatabaseObjects, section: 'pre' | 'post'): PgObject[] {
  return db.objects
    .map((o, i) => ({ o, i }))
    .filter(({ o }) => o.section === section)
    .sort((a, b) => a.o.rank - b.o.rank || a.i - b.i)
    .map(({ o }) => o);
}

async function existingRoles(client: pg.ClientBase, names: string[]): Promise<Set<string>> {
  const rows = await queryJson<string>(
    client,
    `SELECT coalesce(json_agg(rolname), '[]')::text AS j FROM pg_roles WHERE rolname = ANY($1::text[])`,
    [names],
  );
  return new Set(rows);
}

type AvailableExtension = { name: string; version: string; default: string | null; installed: string | null };

async function availableExtensions(client: pg.ClientBase, names: string[]): Promise<AvailableExtension[]> {
  return queryJson<AvailableExtension>(
    client,
    `SELECT coalesce(json_agg(json_build_object('name', v.name, 'version', v.version, 'default', a.default_version,
       'installed', a.installed_version)), '[]')::text AS j
     FROM pg_available_extension_versions v JOIN pg_available_extensions a ON a.name = v.name WHERE v.name = ANY($1::text[])`,
    [names],
  );
}

/**
 * What would stop the objects from being carried, found before anything is written: an extension the target's
 * server does not have, roles missing under `roles: require`, or roles to create without the right to.
 */
export async function objectProblems(client: pg.ClientBase, plans: TablePlan[]): Promise<Problem[]> {
  const db = databaseOf(plans);
  if (!db) return [];
  const out: Problem[] = [];
  const avail = await availableExtensions(client, db.extensions.map((e) => e.name));
  for (const e of db.extensions) {
    if (!avail.some((a) => a.name === e.name)) {
      out.push({
        message: `extension ${e.name} (version ${e.version} on the source) is not available on the target server`,
        hint: `install the package that provides ${e.name} ${e.version} on the target server, or drop the extension from the source`,
      });
    }
  }
  const names = db.roleDefs.map((r) => r.name);
  const have = await existingRoles(client, names);
  const missing = names.filter((n) => !have.has(n));
  if (missing.length > 0 && db.roles === 'require') {
    out.push({
      message: `role(s) ${missing.join(', ')} named by the source's owners, grants or policies do not exist on the target`,
      hint: 'create them on the target, or set `roles: create` (Ferry creates them, without passwords) or `roles: skip`',
    });
  }
  if (missing.length > 0 && db.roles === 'create') {
    const r = await client.query<{ ok: string; sup: string }>(
      `SELECT (rolcreaterole OR rolsuper)::text AS ok, rolsuper::text AS sup FROM pg_roles WHERE rolname = current_user`,
    );
    const needsSuper = db.roleDefs.filter((d) => missing.includes(d.name) && (d.superuser || d.replication || d.bypassRls));
    if (r.rows[0]?.ok !== 'true' || (needsSuper.length > 0 && r.rows[0]?.sup !== 'true')) {
      out.push({
        message: `Ferry must create role(s) ${missing.join(', ')} on the target, and the target user may not`,
        hint: 'create the roles on the target first, grant the target user CREATEROLE, or set `roles: skip`',
      });
    }
  }
  return out;
}

function createRoleSql(r: PgRoleDef): string {
  const flag = (on: boolean, word: string) => (on ? word : `NO${word}`);
  let sql =
    `CREATE ROLE ${ident(r.name)} WITH ${flag(r.superuser, 'SUPERUSER')} ${flag(r.inherit, 'INHERIT')} ` +
    `${flag(r.createRole, 'CREATEROLE')} ${flag(r.createDb, 'CREATEDB')} ${flag(r.login, 'LOGIN')} ` +
    `${flag(r.replication, 'REPLICATION')} ${flag(r.bypassRls, 'BYPASSRLS')} CONNECTION LIMIT ${r.connectionLimit}`;
  if (r.validUntil !== null) sql += ` VALID UNTIL ${literal(r.validUntil)}`;
  return sql;
}

type Run = (st: { label: string; sql: string }) => Promise<void>;

/**
 * Before the tables, in the create transaction: missing roles (`roles: create`), extensions, then the functions
 * the tables' defaults may call. Function bodies are not checked here, as pg_dump does not: they may name tables
 * that come later.
 */
export async function applyPre(client: pg.ClientBase, plans: TablePlan[], run: Run): Promise<void> {
  const db = databaseOf(plans);
  if (!db) return;
  const names = db.roleDefs.map((r) => r.name);
  if (db.roles === 'create' && names.length > 0) {
    const have = await existingRoles(client, names);
    const created = db.roleDefs.filter((r) => !have.has(r.name));
    for (const r of created) await run({ label: `creating role ${r.name}`, sql: createRoleSql(r) });
    const known = new Set([...have, ...created.map((r) => r.name)]);
    for (const r of created) {
      for (const m of r.memberOf ?? []) {
        if (!known.has(m.role)) continue;
        await run({
          label: `granting role ${m.role} to ${r.name}`,
          sql: `GRANT ${ident(m.role)} TO ${ident(r.name)}${m.admin ? ' WITH ADMIN OPTION' : ''}`,
        });
      }
    }
  }
  const avail = await availableExtensions(client, db.extensions.map((e) => e.name));
  for (const e of db.extensions) {
    const versions = avail.filter((a) => a.name === e.name);
    if (versions.length === 0) {
      throw new PreflightError(
        `extension ${e.name} (version ${e.version} on the source) is not available on the target server`,
        `install the package that provides ${e.name} ${e.version} on the target server`,
      );
    }
    if (versions[0]!.installed !== null) continue;
    // The source's version when the target has it; otherwise the target's default (what ALTER EXTENSION UPDATE gives).
    const version = versions.some((v) => v.version === e.version) ? ` VERSION ${literal(e.version)}` : '';
    await run({
      label: `creating extension ${e.name}`,
      sql: `CREATE EXTENSION IF NOT EXISTS ${ident(e.name)} WITH SCHEMA ${ident(e.schema)}${version} CASCADE`,
    });
  }
  await client.query(`SELECT set_config('check_function_bodies', 'false', true)`);
  for (const o of sectionOf(db, 'pre')) {
    for (const s of o.statements) await run({ label: `creating ${o.kind} ${o.name}`, sql: s.sql });
  }
}

/**
 * The post-data statements, in order. With `roles: skip`, a statement naming a role the target lacks is left out
 * and reported; with the other settings the roles exist by now (created, or required by the preflight).
 */
export async function postStatements(
  client: pg.ClientBase,
  plans: TablePlan[],
): Promise<{ statements: { label: string; sql: string }[]; warnings: string[] }> {
  const db = databaseOf(plans);
  if (!db) return { statements: [], warnings: [] };
  const objects = sectionOf(db, 'post');
  const named = [...new Set(objects.flatMap((o) => o.statements.flatMap((s) => s.roles)))];
  const have = await existingRoles(client, named);
  const warnings = db.skipped.map((s) => `${s.kind} ${s.name} not created on the target: ${s.reason}`);
  const statements: { label: string; sql: string }[] = [];
  const warned = new Set<string>();
  for (const o of objects) {
    // Grants are independent statements; any other object stands or falls whole (a policy's comment needs it).
    const whole = o.kind !== 'grant' && o.kind !== 'default privileges';
    const lacking = whole ? [...new Set(o.statements.flatMap((s) => s.roles.filter((r) => !have.has(r))))] : [];
    for (const s of o.statements) {
      const missing = whole ? lacking : s.roles.filter((r) => !have.has(r));
      if (missing.length > 0) {
        const w = `${o.kind} ${o.name}: not carried for role(s) ${missing.join(', ')}, missing on the target (roles: ${db.roles})`;
        if (!warned.has(w)) (warned.add(w), warnings.push(w));
        continue;
      }
      statements.push({ label: `${o.section === 'post' && o.kind === 'owner' ? 'setting the owner of' : o.kind === 'grant' ? 'granting on' : o.kind === 'comment' ? 'commenting on' : 'creating'} ${o.kind === 'owner' || o.kind === 'grant' || o.kind === 'comment' ? '' : `${o.kind} `}${o.name}`, sql: s.sql });
    }
  }
  return { statements, warnings };
}

/**
 * What `ferry plan` shows about the objects: one line per kind with its count (tables are listed by the plan
 * itself), the extensions and roles, then each thing left out and why.
 */
export function objectSummary(plans: TablePlan[]): string[] {
  const db = databaseOf(plans);
  if (!db) return [];
  const counts = new Map<string, number>();
  const add = (kind: string, n = 1) => counts.set(kind, (counts.get(kind) ?? 0) + n);
  if (db.extensions.length) add('extension', db.extensions.length);
  add('schema', db.schemas.length);
  if (db.types.length) add('type', db.types.length);
  for (const o of db.objects) {
    if (o.kind === 'grant' || o.kind === 'comment' || o.kind === 'owner' || o.kind === 'default privileges') {
      add(o.kind === 'owner' ? 'ownership' : o.kind === 'default privileges' ? 'default privilege' : o.kind, o.statements.filter((s) => !s.sql.startsWith('REVOKE')).length);
    } else add(o.kind);
  }
  const plural = (k: string, n: number) => (n === 1 || k === 'statistics' ? k : k.endsWith('y') ? `${k.slice(0, -1)}ies` : `${k}s`);
  const out = [`objects besides tables: ${[...counts].map(([k, n]) => `${n} ${plural(k, n)}`).join(', ')}`];
  if (db.extensions.length) out.push(`  extensions: ${db.extensions.map((e) => `${e.name} ${e.version}`).join(', ')}`);
  if (db.roleDefs.length) out.push(`  roles named (roles: ${db.roles}): ${db.roleDefs.map((r) => r.name).join(', ')}`);
  out.push(`  owners: ${db.owner === 'keep' ? "the source's (schema.owner: keep)" : 'the target user (schema.owner: target-user)'}`);
  for (const s of db.skipped) out.push(`skipped ${s.kind} ${s.name}: ${s.reason}`);
  return out;
}
