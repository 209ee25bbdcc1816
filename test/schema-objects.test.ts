/**
 * Issue 8, around the oracle: the `roles` and `schema.owner` settings, selection and rename with the objects that
 * hang on tables, an extension the target's server lacks (PostgreSQL 15 -> 18), and what `ferry plan` lists.
 * The fixture is test/support/app-schema.ts; role tests get a fresh target cluster each (roles are cluster-wide).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { APP_SCHEMA } from './support/app-schema.js';
import { ferry, writeConfig } from './support/ferry-cli.js';
import { query } from './support/pg-pair.js';
import { pg15Available, startPg15 } from './support/pg15.js';

let source: Cluster;
let shared: Cluster;
let sourceUrl: string;
let n = 0;

beforeAll(async () => {
  [source, shared] = await Promise.all([startCluster(), startCluster()]);
  await source.createDatabase('app');
  sourceUrl = source.urlFor('app');
  await query(sourceUrl, APP_SCHEMA);
}, 120_000);
afterAll(async () => {
  await Promise.allSettled([source?.stop(), shared?.stop()]);
});

async function freshTarget(cluster: Cluster): Promise<string> {
  const name = `copy_${++n}`;
  await cluster.createDatabase(name);
  return cluster.urlFor(name);
}

/** Warnings go to the JSON log on stderr. */
function run(targetUrl: string, extra: Record<string, unknown> = {}, from = sourceUrl) {
  const config = writeConfig({ source: { url: from }, target: { url: targetUrl }, mode: 'snapshot', workers: 2, ...extra });
  return ferry(['run', config], { FERRY_LOG_LEVEL: 'warn' });
}

const roleNames = (url: string) =>
  query(url, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'app\\_%' ORDER BY 1`).then((r) => r.map((x) => x.rolname));

describe('roles and owners', () => {
  it('roles: require fails before anything is written, naming the missing roles', async () => {
    const cluster = await startCluster();
    try {
      const target = await freshTarget(cluster);
      const r = await run(target, { roles: 'require' });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/role\(s\) app_\w+(, app_\w+)* named by the source's owners, grants or policies do not exist on the target/);
      expect(r.stderr).toContain('roles: create');
      expect(await query(target, `SELECT nspname FROM pg_namespace WHERE nspname IN ('app', '_ferry')`)).toEqual([]);
      expect(await roleNames(cluster.url)).toEqual([]);
    } finally {
      await cluster.stop();
    }
  }, 120_000);

  it('roles: skip leaves out what names a missing role, and says so', async () => {
    const cluster = await startCluster();
    try {
      const target = await freshTarget(cluster);
      const r = await run(target, { roles: 'skip' });
      expect(r.stderr + r.stdout).not.toMatch(/error/i);
      expect(r.code).toBe(0);
      expect(r.stderr + r.stdout).toMatch(/policy orders_reader on app\.orders: not carried for role\(s\) app_reader, missing on the target \(roles: skip\)/);
      expect(await roleNames(cluster.url)).toEqual([]);
      // What names no missing role is there (triggers, views); the policies, for missing roles, are not.
      expect(await query(target, `SELECT tgname FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass AND NOT tgisinternal ORDER BY 1`))
        .toEqual([{ tgname: 'orders_audit' }, { tgname: 'orders_deleted' }]);
      expect(await query(target, `SELECT polname FROM pg_policy ORDER BY 1`)).toEqual([]);
      expect(await query(target, `SELECT pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = 'app.orders'::regclass`)).toEqual([{ o: 'postgres' }]);
    } finally {
      await cluster.stop();
    }
  }, 120_000);

  it('roles: create makes the named roles with attributes and memberships; schema.owner: target-user leaves ownership to the target user', async () => {
    const target = await freshTarget(shared);
    const r = await run(target, { schema: { owner: 'target-user' } });
    expect(r.code).toBe(0);
    // app_owner too: the default privileges FOR ROLE app_owner name it.
    expect(await roleNames(shared.url)).toEqual(['app_login', 'app_owner', 'app_reader', 'app_writer']);
    expect(await query(shared.url, `SELECT rolname, rolcanlogin::text, rolconnlimit::text,
        (SELECT string_agg(pg_get_userbyid(roleid), ',') FROM pg_auth_members WHERE member = r.oid) AS member_of
      FROM pg_roles r WHERE rolname LIKE 'app\\_%' ORDER BY 1`)).toEqual([
      { rolname: 'app_login', rolcanlogin: 'true', rolconnlimit: '5', member_of: 'app_writer' },
      { rolname: 'app_owner', rolcanlogin: 'false', rolconnlimit: '-1', member_of: null },
      { rolname: 'app_reader', rolcanlogin: 'false', rolconnlimit: '-1', member_of: null },
      { rolname: 'app_writer', rolcanlogin: 'false', rolconnlimit: '-1', member_of: 'app_reader' },
    ]);
    expect(await query(target, `SELECT DISTINCT pg_get_userbyid(relowner) AS o FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE n.nspname = 'app'`)).toEqual([{ o: 'postgres' }]);
    expect(await query(target, `SELECT has_table_privilege('app_reader', 'app.orders', 'SELECT')::text AS r,
                                       has_table_privilege('app_reader', 'app.orders', 'INSERT')::text AS w`)).toEqual([{ r: 'true', w: 'false' }]);
  }, 120_000);
});

describe('selection and rename', () => {
  it('leaves out, with a warning naming them, the views over an excluded table; what hangs on included tables follows them', async () => {
    const target = await freshTarget(shared);
    const r = await run(target, { exclude: ['app.customers'] });
    const out = r.stderr + r.stdout;
    expect(out).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(out).toContain('view app.order_totals not created on the target: it reads app.customers, which is not part of this flow');
    expect(out).toContain('view app.big_customers not created on the target: it reads view app.order_totals, which is left out');
    expect(out).toContain('materialized view app.never_filled not created on the target');
    expect(await query(target, `SELECT relname FROM pg_class WHERE relname IN ('customers', 'order_totals', 'big_customers', 'status_counts') ORDER BY 1`))
      .toEqual([{ relname: 'status_counts' }]);
    expect(await query(target, `SELECT count(*)::text AS n FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass AND NOT tgisinternal`)).toEqual([{ n: '2' }]);
  }, 120_000);

  it('points triggers, policies, grants and comments of a renamed table at its new name; views over it are left out', async () => {
    const target = await freshTarget(shared);
    const r = await run(target, { rename: { 'app.orders': 'sales.purchases' } });
    const out = r.stderr + r.stdout;
    expect(out).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(out).toContain('view app.order_totals not created on the target: it reads app.orders, which is renamed to sales.purchases');
    expect(await query(target, `SELECT tgname, tgenabled::text AS e FROM pg_trigger WHERE tgrelid = 'sales.purchases'::regclass AND NOT tgisinternal ORDER BY 1`))
      .toEqual([{ tgname: 'orders_audit', e: 'O' }, { tgname: 'orders_deleted', e: 'D' }]);
    expect(await query(target, `SELECT polname FROM pg_policy WHERE polrelid = 'sales.purchases'::regclass ORDER BY 1`))
      .toEqual([{ polname: 'orders_reader' }, { polname: 'orders_writer' }]);
    expect(await query(target, `SELECT obj_description('sales.purchases'::regclass, 'pg_class') AS c,
      relrowsecurity::text AS rls, relforcerowsecurity::text AS force, pg_get_userbyid(relowner) AS o
      FROM pg_class WHERE oid = 'sales.purchases'::regclass`)).toEqual([{ c: "orders; with a quote's", rls: 'true', force: 'true', o: 'app_owner' }]);
    expect(await query(target, `SELECT has_table_privilege('app_writer', 'sales.purchases', 'INSERT')::text AS w`)).toEqual([{ w: 'true' }]);
    // The trigger still works on the new name (it writes app.audit through the function).
    await query(target, `INSERT INTO app.customers (email) VALUES ('new@example.com')`);
    const before = await query(target, `SELECT count(*)::text AS n FROM app.audit`);
    await query(target, `INSERT INTO sales.purchases (customer_id, total) SELECT max(id), 1 FROM app.customers`);
    expect(await query(target, `SELECT count(*)::text AS n FROM app.audit`)).toEqual([{ n: String(Number(before[0]!.n) + 1) }]);
  }, 120_000);
});

describe('ferry plan', () => {
  it('lists the objects it will create by kind, with counts, and what it skips and why', async () => {
    const target = await freshTarget(shared);
    const r = await ferry(['plan', writeConfig({ source: { url: sourceUrl }, target: { url: target }, exclude: ['app.customers'] })]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/objects besides tables: 3 extensions, 2 schemas, 4 types, \d+ ownerships, \d+ grants, 1 row security, \d+ comments, 2 triggers, 1 rule, 2 policies, 1 statistics, 1 procedure, 3 functions, 1 materialized view, \d+ default privileges/);
    expect(r.stdout).toContain('extensions: btree_gist');
    expect(r.stdout).toContain('skipped view app.order_totals: it reads app.customers, which is not part of this flow');
    // A plan writes nothing.
    expect(await query(target, `SELECT nspname FROM pg_namespace WHERE nspname IN ('app', '_ferry')`)).toEqual([]);
  }, 120_000);
});

describe.skipIf(!pg15Available())('major versions', () => {
  it('refuses, before writing, an extension the target server does not ship, naming it and its version', async () => {
    const old = await startPg15();
    try {
      await old.createDatabase('legacy');
      const url = old.urlFor('legacy');
      await query(url, `CREATE EXTENSION old_snapshot; CREATE TABLE public.t (id int PRIMARY KEY)`);
      const target = await freshTarget(shared);
      const r = await run(target, {}, url);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('extension old_snapshot (version 1.0 on the source) is not available on the target server');
      expect(await query(target, `SELECT relname FROM pg_class WHERE relname = 't'`)).toEqual([]);
    } finally {
      await old.stop();
    }
  }, 120_000);
});
