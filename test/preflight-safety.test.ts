/**
 * Safety before the first write: a config that names the same database twice is refused; every privilege the run
 * needs on the source and the target is checked, with the GRANT that fixes it, before anything is written on either
 * side; `ferry plan` refuses what `ferry run` refuses for its mode; the publication and slot exist before the target
 * is touched; and an interrupted keyless copy gives advice that works when followed.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';
import { sameDatabaseProblem } from '../src/adapters/postgres/preflight-safety.js';

const pair = usePgPair();

/** The same URL with another user and password. */
function as(url: string, user: string, password = 'pw'): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

const nothingWritten = async (urls: { sourceUrl: string; targetUrl: string }) => {
  const [t] = await query(urls.targetUrl, `SELECT count(*) AS n FROM pg_namespace WHERE nspname IN ('app', '_ferry')`);
  const [s] = await query(urls.sourceUrl, `SELECT (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()) + (SELECT count(*) FROM pg_publication) AS n`);
  return { target: t!.n, source: s!.n };
};

describe('what counts as the same database', () => {
  const db = { sysid: '7714', dboid: '16384', db: 'shop', started: '2026-12-01 09:00:00.123+00', recovery: false };
  it('one server, one database OID: the same database', () => {
    expect(sameDatabaseProblem(db, { ...db })).toMatch(/same database/);
    expect(sameDatabaseProblem(db, { ...db, sysid: null })).toMatch(/same database/); // pg_control_system() revoked
  });
  it('another database on the same server, or a cluster restored from the same backup: different', () => {
    expect(sameDatabaseProblem(db, { ...db, dboid: '16385', db: 'shop2' })).toBeUndefined();
    expect(sameDatabaseProblem(db, { ...db, started: '2026-12-01 10:00:00.456+00' })).toBeUndefined();
  });
  it('a primary and its physical standby: refused', () => {
    expect(sameDatabaseProblem(db, { ...db, started: '2026-12-01 10:00:00.456+00', recovery: true })).toMatch(/physical standby/);
  });
});

describe('safety before the first write', () => {
  it('refuses source and target being the same database, before truncating anything', async () => {
    const urls = await freshDatabases(pair(), 'same');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY); INSERT INTO app.t SELECT generate_series(1, 100)`);
    for (const mode of ['snapshot', 'snapshot+cdc']) {
      const cfg = writeConfig({ name: 'same', source: { url: urls.sourceUrl }, target: { url: urls.sourceUrl, onExistingRows: 'truncate' }, mode });
      for (const cmd of ['plan', 'run']) {
        const r = await ferry([cmd, cfg]);
        expect(r.code, `${cmd} ${mode}: ${r.stdout}`).toBe(1);
        expect(r.stderr).toContain('source and target are the same database');
        expect(r.stderr).not.toContain('unexpected error');
      }
    }
    const [n] = await query(urls.sourceUrl, `SELECT count(*) AS n FROM app.t`);
    expect(n!.n).toBe('100');
    // The same server under another spelling of its address is the same database too.
    const other = urls.sourceUrl.replace('127.0.0.1', 'localhost');
    const cfg = writeConfig({ name: 'same2', source: { url: urls.sourceUrl }, target: { url: other, onExistingRows: 'truncate' } });
    const r = await ferry(['run', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('same database');
    // Another database on the same server is fine.
    const dst = urls.targetUrl.replace(/\/[^/]+$/, '/same_dst');
    await query(urls.sourceUrl.replace(/\/[^/]+$/, '/postgres'), `CREATE DATABASE same_dst`);
    const ok = await ferry(['plan', writeConfig({ name: 'same3', source: { url: urls.sourceUrl }, target: { url: dst.replace(new URL(dst).host, new URL(urls.sourceUrl).host) } })]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('checks the source user before anything is written: SELECT, CREATE on the database, table ownership', async () => {
    const urls = await freshDatabases(pair(), 'srcpriv');
    await query(urls.sourceUrl, `
      DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mig') THEN CREATE ROLE mig LOGIN REPLICATION PASSWORD 'pw'; END IF; END $$;
      CREATE SCHEMA app;
      CREATE TABLE app.a (id int PRIMARY KEY, v text);
      CREATE TABLE app.b (id int PRIMARY KEY, v text);
      INSERT INTO app.a SELECT g, 'a' FROM generate_series(1, 50) g;
      GRANT USAGE ON SCHEMA app TO mig;
      GRANT SELECT ON app.a TO mig;
    `);
    const src = as(urls.sourceUrl, 'mig');
    // Never analyzed, app.b is counted while describing, which fails first: still a message, no stack.
    const early = await ferry(['plan', writeConfig({ name: 'srcpriv0', source: { url: src }, target: { url: urls.targetUrl }, include: ['app.*'] })]);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain('the source user mig may not read a selected table: permission denied for table b');
    expect(early.stderr).not.toContain('unexpected error');
    await query(urls.sourceUrl, `ANALYZE app.a; ANALYZE app.b`);
    const cfg = writeConfig({ name: 'srcpriv', source: { url: src }, target: { url: urls.targetUrl }, include: ['app.*'], mode: 'snapshot+cdc' });
    for (const cmd of ['plan', 'run']) {
      const r = await ferry([cmd, cfg]);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toContain('GRANT SELECT ON "app"."b" TO "mig"');
      expect(r.stderr).toMatch(/lacks CREATE on database srcpriv_src.*GRANT CREATE ON DATABASE "srcpriv_src" TO "mig"/);
      expect(r.stderr).toMatch(/does not own app\.a \(owned by postgres\), app\.b \(owned by postgres\)/);
      expect(r.stderr).not.toContain('unexpected error');
    }
    expect(await nothingWritten(urls)).toEqual({ target: '0', source: '0' });
    // In snapshot mode the publication's privileges are not needed; reading is.
    const snap = writeConfig({ name: 'srcpriv2', source: { url: src }, target: { url: urls.targetUrl }, include: ['app.*'] });
    const r = await ferry(['plan', snap]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GRANT SELECT ON "app"."b"');
    expect(r.stderr).not.toContain('CREATE ON DATABASE');
    // Granted what the messages say: plan passes.
    await query(urls.sourceUrl, `GRANT SELECT ON app.b TO mig; GRANT CREATE ON DATABASE srcpriv_src TO mig; ALTER TABLE app.a OWNER TO mig; ALTER TABLE app.b OWNER TO mig`);
    const ok = await ferry(['plan', cfg]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('checks the target user: CREATE on the database and session_replication_role, with the GRANTs to run', async () => {
    const urls = await freshDatabases(pair(), 'tgtpriv');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t SELECT g, 'v' FROM generate_series(1, 500) g`);
    await query(urls.targetUrl, `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'loader') THEN CREATE ROLE loader LOGIN PASSWORD 'pw'; END IF; END $$`);
    const cfg = writeConfig({ name: 'tgtpriv', source: { url: urls.sourceUrl }, target: { url: as(urls.targetUrl, 'loader') }, include: ['app.*'], mode: 'snapshot+cdc' });
    for (const cmd of ['plan', 'run']) {
      const r = await ferry([cmd, cfg]);
      expect(r.code, r.stdout).toBe(1);
      expect(r.stderr).toContain('GRANT CREATE ON DATABASE "tgtpriv_dst" TO "loader"');
      expect(r.stderr).toContain('may not set session_replication_role');
      expect(r.stderr).toContain('GRANT SET ON PARAMETER session_replication_role TO loader');
      expect(r.stderr).not.toContain('unexpected error');
    }
    // Neither side was written: no slot or publication on the source either.
    expect(await nothingWritten(urls)).toEqual({ target: '0', source: '0' });
    // With exactly those grants, a non-superuser target user runs the whole flow.
    await query(urls.targetUrl, `GRANT CREATE ON DATABASE tgtpriv_dst TO loader; GRANT SET ON PARAMETER session_replication_role TO loader`);
    // Keeping the source's owner (postgres) needs more than these grants: the refusal says what to set instead.
    const keep = writeConfig({ name: 'tgtpriv2', source: { url: urls.sourceUrl }, target: { url: as(urls.targetUrl, 'loader') }, include: ['app.*'] });
    const refused = await ferry(['run', keep]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('schema.owner: target-user');
    const snap = writeConfig({ name: 'tgtpriv3', source: { url: urls.sourceUrl }, target: { url: as(urls.targetUrl, 'loader') }, include: ['app.*'], schema: { owner: 'target-user' } });
    const run = await ferry(['run', snap]);
    expect(run.code, run.stderr).toBe(0);
    const verify = await ferry(['verify', snap]);
    expect(verify.code, verify.stdout).toBe(0);
  });

  it('plan refuses what run refuses in snapshot+cdc mode (and a deferrable primary key)', async () => {
    const urls = await freshDatabases(pair(), 'planrun');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.nokey (a int);
      CREATE TABLE app.shift (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
      ALTER TABLE app.shift REPLICA IDENTITY FULL;
    `);
    const cfg = writeConfig({ name: 'planrun', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'], mode: 'snapshot+cdc' });
    const plan = await ferry(['plan', cfg]);
    const run = await ferry(['run', cfg]);
    for (const r of [plan, run]) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('app.nokey has no primary key');
      expect(r.stderr).toContain('app.shift has a DEFERRABLE primary key');
    }
    expect(await nothingWritten(urls)).toEqual({ target: '0', source: '0' });
    // Snapshot mode needs none of that.
    const snap = await ferry(['plan', writeConfig({ name: 'planrun2', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'] })]);
    expect(snap.code, snap.stderr).toBe(0);
  });

  it('creates the publication and slot before the target is touched: a failure there leaves the target as it was', async () => {
    const urls = await freshDatabases(pair(), 'order');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t VALUES (1, 'new');
      CREATE FUNCTION public.no_pub() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'publications are not allowed here'; END $$;
      CREATE EVENT TRIGGER no_pub ON ddl_command_start WHEN TAG IN ('CREATE PUBLICATION') EXECUTE FUNCTION public.no_pub();
    `);
    await query(urls.targetUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t VALUES (1, 'old')`);
    const cfg = writeConfig({ name: 'order', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl, onExistingRows: 'truncate' }, include: ['app.*'], mode: 'snapshot+cdc' });
    const r = await ferry(['run', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('publications are not allowed here');
    // Not truncated, no bookkeeping created.
    expect(await query(urls.targetUrl, `SELECT v FROM app.t`)).toEqual([{ v: 'old' }]);
    const [f] = await query(urls.targetUrl, `SELECT to_regnamespace('_ferry')::text AS f`);
    expect(f!.f).toBeNull();
  });

  it('an interrupted keyless copy: the advice (reset, then run with truncate) works when followed', async () => {
    const urls = await freshDatabases(pair(), 'keyless');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.log (at int, msg text);
      ALTER TABLE app.log REPLICA IDENTITY FULL;
      INSERT INTO app.log SELECT g, repeat('m', 200) FROM generate_series(1, 400000) g;
      ANALYZE;
    `);
    const cfg = writeConfig({ name: 'keyless', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'], mode: 'snapshot+cdc', rowsPerRange: 20000, batchRows: 2000, workers: 1 });
    const first = startFerry(['run', cfg]);
    await waitFor('a chunk of the keyless table', async () => {
      const rows = await query(urls.targetUrl, `SELECT count(*) AS n FROM _ferry.snapshot_progress WHERE rows > 0`).catch(() => [{ n: '0' }]);
      return rows[0]!.n !== '0';
    }, 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const again = await ferry(['run', cfg]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('app.log (no primary key) was interrupted');
    expect(again.stderr).toContain('ferry reset <config> --yes');
    expect(again.stderr).toContain('onExistingRows: truncate');
    // What `ferry reset --yes` does (slot, publication, _ferry, local state), then the run the advice names.
    expect((await ferry(['cleanup', cfg])).code).toBe(0);
    await query(urls.targetUrl, `DROP SCHEMA IF EXISTS _ferry CASCADE`);
    rmSync(join(dirname(cfg), 'state.db'), { force: true });
    const cfg2 = writeConfig({ name: 'keyless', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl, onExistingRows: 'truncate' }, include: ['app.*'], mode: 'snapshot+cdc', rowsPerRange: 100000, workers: 2 });
    const second = startFerry(['run', cfg2]);
    await waitForPhase(cfg2, 'streaming', 120_000, second);
    await query(urls.sourceUrl, `INSERT INTO app.log VALUES (0, 'after')`);
    expect((await ferry(['stop', cfg2])).code).toBe(0);
    expect((await second.exited).code).toBe(0);
    const hash = `SELECT count(*) AS n, md5(string_agg(at::text || msg, ',' ORDER BY at, msg)) AS h FROM app.log`;
    expect(await query(urls.targetUrl, hash)).toEqual(await query(urls.sourceUrl, hash));
  });
});
