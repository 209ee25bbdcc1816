/**
 * Bad input through the real CLI (`node bin/ferry.js …` as a child process): each case exits non-zero with a message
 * that says what is wrong and where (field path, endpoint, include entry, table, column), never prints a password,
 * and leaves nothing half-written on the target. Then the good path of `plan` and `status`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareTables } from '../src/demo/compare.js';
import { freePort } from '../src/embedded/cluster.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

// Under vitest, the run's build of the same sources (test/support/cli-build.ts): a start without tsx's loader.
const BIN = process.env.FERRY_PREBUILT_CLI || join(import.meta.dirname, '..', 'bin', 'ferry.js');
const dir = mkdtempSync(join(tmpdir(), 'ferry-bad-'));
let files = 0;

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion. `FERRY_TEST_*` variables are only what `env` gives. */
function ferry(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_TEST_')));
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A config file; objects are written as JSON, strings as they are (YAML). */
function configFile(content: string | Record<string, unknown>, ext = typeof content === 'string' ? 'yaml' : 'json'): string {
  const path = join(dir, `cfg-${++files}.${ext}`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

const statePath = () => join(dir, `state-${++files}.db`);

/** The human part of stderr: without the JSON progress lines a non-terminal run also writes there. */
const message = (out: Outcome) => out.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n');

/** A user error: exit 1, one `ferry: error:` message (and its hint), no stack trace. */
function expectUserError(out: Outcome): void {
  expect(out.code, out.stderr).toBe(1);
  expect(message(out)).toMatch(/^ferry: error: /);
  expect(out.stderr).not.toMatch(/unexpected error|\n\s+at /);
}

/** Schemas and tables outside the system ones, and user types: what a run could have left on the target. */
async function targetObjects(url: string): Promise<{ schemas: string; tables: string; types: string }> {
  const [row] = await query<{ schemas: string; tables: string; types: string }>(
    url,
    `SELECT
       (SELECT coalesce(string_agg(nspname, ',' ORDER BY nspname), '') FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')) AS schemas,
       (SELECT coalesce(string_agg(schemaname || '.' || tablename, ',' ORDER BY 1), '') FROM pg_tables
        WHERE schemaname NOT IN ('pg_catalog', 'information_schema')) AS tables,
       (SELECT coalesce(string_agg(t.typname, ',' ORDER BY 1), '') FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
          AND (t.typtype IN ('e', 'd')
               OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))) AS types`,
  );
  return row!;
}

const NOTHING = { schemas: '', tables: '', types: '' };

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TYPE app.status AS ENUM ('new', 'paid');
  CREATE TABLE app.accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
  CREATE TABLE app.orders (id int PRIMARY KEY, account_id bigint REFERENCES app.accounts, total numeric(12,2), status app.status);
  INSERT INTO app.accounts (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 500) g;
  INSERT INTO app.orders SELECT g, 1 + g % 500, g * 1.25, CASE WHEN g % 2 = 0 THEN 'paid' ELSE 'new' END::app.status
    FROM generate_series(1, 2000) g;
  ANALYZE;
`;

/** The endpoint as Ferry names it in messages: user@host:port/db. */
function endpointOf(url: string): string {
  const u = new URL(url);
  return `${u.username}@${u.hostname}:${u.port}${u.pathname}`;
}

/** A URL with another password (embedded clusters' user is `postgres`, whose password `postgres` is also the user). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

function baseConfig(urls: { sourceUrl: string; targetUrl: string }, extra: Record<string, unknown> = {}) {
  return {
    name: 'bad',
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    rowsPerRange: 600,
    batchRows: 250,
    workers: 2,
    state: { path: statePath() },
    ...extra,
  };
}

describe('config errors', () => {
  let urls: { sourceUrl: string; targetUrl: string };
  beforeAll(async () => {
    urls = await freshDatabases(pair(), 'cfg');
    await query(urls.sourceUrl, SCHEMA);
  });
  afterAll(async () => {
    // None of them got as far as the target.
    expect(await targetObjects(urls.targetUrl)).toEqual(NOTHING);
  });

  it('an unknown field, top level or nested, is named', async () => {
    const [top, nested] = await Promise.all([
      ferry(['run', configFile(baseConfig(urls, { wrokers: 2 }))]),
      ferry(['run', configFile({ ...baseConfig(urls), target: { url: urls.targetUrl, onExistingRow: 'truncate' } })]),
    ]);
    expectUserError(top);
    expect(top.stderr).toContain('(top level): unknown field `wrokers`');
    expectUserError(nested);
    expect(nested.stderr).toContain('target: unknown field `onExistingRow`');
  });

  it('a value of the wrong type names the field path', async () => {
    const yaml = (workers: string, port: string) =>
      `source: { url: "${urls.sourceUrl}" }\n` +
      `target: { host: 127.0.0.1, port: ${port}, user: postgres, password: postgres, database: x }\n` +
      `workers: ${workers}\n`;
    const [workers, port] = await Promise.all([
      ferry(['run', configFile(yaml('four', '5432'))]),
      ferry(['run', configFile(yaml('2', 'not-a-port'))]),
    ]);
    expectUserError(workers);
    expect(workers.stderr).toMatch(/is invalid:\n\s+- workers: .*expected number/);
    expectUserError(port);
    expect(port.stderr).toMatch(/- target\.port: .*expected number/);
    expect(port.stderr).not.toMatch(/- workers/);
  });

  it('an unset ${VAR} names the field and the variable to export', async () => {
    const path = configFile(
      `source: { url: "${urls.sourceUrl}" }\n` +
        'target:\n  host: 127.0.0.1\n  user: postgres\n  password: ${FERRY_TEST_UNSET_PASSWORD}\n  database: x\n',
    );
    const out = await ferry(['run', path]);
    expectUserError(out);
    expect(out.stderr).toContain('target.password: environment variable FERRY_TEST_UNSET_PASSWORD is not set');
    expect(out.stderr).toContain('export FERRY_TEST_UNSET_PASSWORD=');
  });

  it('a missing file and invalid YAML say so, naming the file', async () => {
    const missing = join(dir, 'no-such-config.yaml');
    const broken = configFile('source: { url: [unclosed\ntarget: x\n');
    const [a, b] = await Promise.all([ferry(['run', missing]), ferry(['run', broken])]);
    expectUserError(a);
    expect(a.stderr).toContain(`cannot read config file ${missing}: ENOENT`);
    expectUserError(b);
    expect(b.stderr).toContain(`${broken} is not valid YAML or JSON`);
  });

  it('no config file at all is a usage error (exit 2)', async () => {
    const out = await ferry(['run']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('give exactly one config file');
  });
});

describe('unreachable or refusing databases', () => {
  it('a closed port names the endpoint and never prints the password', async () => {
    const urls = await freshDatabases(pair(), 'closed');
    await query(urls.sourceUrl, SCHEMA);
    const port = await freePort(); // free a moment ago: nothing listens there
    const password = 'S3cret/Unreach@ble pw';
    const fields = {
      ...baseConfig(urls),
      source: { host: '127.0.0.1', port, user: 'ferry_user', password, database: 'shop' },
    };
    const asUrl = baseConfig(urls, { target: { url: `postgres://ferry_user:${encodeURIComponent(password)}@127.0.0.1:${port}/shop` } });
    const [src, dst] = await Promise.all([ferry(['run', configFile(fields)]), ferry(['run', configFile(asUrl)])]);
    for (const [out, role] of [[src, 'source'], [dst, 'target']] as const) {
      expectUserError(out);
      expect(out.stderr).toContain(`cannot reach ${role} ferry_user@127.0.0.1:${port}/shop`);
      expect(out.stderr).toContain('check the host and port');
      for (const secret of [password, encodeURIComponent(password), 'S3cret']) {
        expect(out.stderr + out.stdout).not.toContain(secret);
      }
    }
    expect(await targetObjects(urls.targetUrl)).toEqual(NOTHING);
  });

  it('a wrong password names the endpoint, says to check the password, and does not print it', async () => {
    const urls = await freshDatabases(pair(), 'wrongpw');
    await query(urls.sourceUrl, SCHEMA);
    const password = 'Wr0ng-Pa55word-7c1e';
    const out = await ferry(['run', configFile(baseConfig(urls, { target: { url: withPassword(urls.targetUrl, password) } }))]);
    expectUserError(out);
    expect(out.stderr).toContain(`cannot log in to target ${endpointOf(urls.targetUrl)}`);
    expect(out.stderr).toMatch(/password authentication failed/);
    expect(out.stderr).toContain('check the user and password');
    expect(out.stderr + out.stdout).not.toContain(password);
    expect(await targetObjects(urls.targetUrl)).toEqual(NOTHING);
  });
});

describe('selection and target checks', () => {
  it('an include entry that matches no table is named, with the tables that exist', async () => {
    const urls = await freshDatabases(pair(), 'include');
    await query(urls.sourceUrl, SCHEMA);
    const out = await ferry(['run', configFile(baseConfig(urls, { include: ['app.accounts', 'app.Orders'] }))]);
    expectUserError(out);
    expect(out.stderr).toContain('include[1] `app.Orders` matches no table in the source');
    expect(out.stderr).toMatch(/tables there: .*app\.orders/);
    expect(out.stderr).toContain('names are case-sensitive: did you mean `app.orders`?');
    expect(await targetObjects(urls.targetUrl)).toEqual(NOTHING);
  });

  it('a target table with rows is refused, naming it, with nothing else created; truncate then copies', async () => {
    const urls = await freshDatabases(pair(), 'nonempty');
    await query(urls.sourceUrl, SCHEMA);
    await query(
      urls.targetUrl,
      `CREATE SCHEMA app;
       CREATE TYPE app.status AS ENUM ('new', 'paid');
       CREATE TABLE app.orders (id int PRIMARY KEY, account_id bigint, total numeric(12,2), status app.status);
       INSERT INTO app.orders VALUES (999999, 1, 0.01, 'new');`,
    );
    const before = await targetObjects(urls.targetUrl);
    expect(before).toEqual({ schemas: 'app', tables: 'app.orders', types: 'status' });
    const config = baseConfig(urls);

    const refused = await ferry(['run', configFile(config)]);
    expectUserError(refused);
    expect(refused.stderr).toContain('target table app.orders already has rows');
    expect(refused.stderr).toContain('onExistingRows: truncate');
    expect(message(refused)).not.toContain('app.accounts');
    // Nothing created (no app.accounts, no _ferry bookkeeping), and the existing row left alone.
    expect(await targetObjects(urls.targetUrl)).toEqual(before);
    expect(await query(urls.targetUrl, 'SELECT id::text FROM app.orders')).toEqual([{ id: '999999' }]);
    // …and no flow recorded: the refused run never started.
    const status = await ferry(['status', configFile(config)]);
    expectUserError(status);
    expect(status.stderr).toMatch(/flow bad is not in .*state-\d+\.db/);

    // The same flow and state, told to replace the rows.
    const again = await ferry(['run', configFile({ ...config, target: { url: urls.targetUrl, onExistingRows: 'truncate' } })]);
    expect(again.code, again.stderr).toBe(0);
    const diffs = await compareTables(urls.sourceUrl, urls.targetUrl, 'app');
    expect(diffs.map((d) => [d.table, d.rows, d.ok])).toEqual([
      ['app.accounts', 500, true],
      ['app.orders', 2000, true],
    ]);
  });

  it('an extension type the target lacks is no longer bad input: Ferry creates the extension (issue 8)', async () => {
    const urls = await freshDatabases(pair(), 'citext');
    await query(
      urls.sourceUrl,
      `${SCHEMA}
       CREATE EXTENSION citext;
       CREATE TABLE app.users (id int PRIMARY KEY, email public.citext);
       INSERT INTO app.users VALUES (1, 'A@Example.com');`,
    );
    const out = await ferry(['run', configFile(baseConfig(urls))]);
    expect(out.code, out.stderr).toBe(0);
    expect(await query(urls.targetUrl, `SELECT (email = 'a@example.com')::text AS same FROM app.users`)).toEqual([{ same: 'true' }]);
    // The refusal of an extension the target's server does not ship: test/schema-objects.test.ts (15 -> 18).
  });
});

describe('plan and status', () => {
  it('`plan` prints tables and ranges and writes nothing; `status` before and after a run', async () => {
    const urls = await freshDatabases(pair(), 'planstatus');
    await query(urls.sourceUrl, SCHEMA);
    const state = statePath();
    // Passwords from the environment, as a real config would have them.
    const withEnv = (url: string, v: string) => url.replace(':postgres@', `:\${${v}}@`);
    const path = configFile({
      ...baseConfig(urls),
      source: { url: withEnv(urls.sourceUrl, 'FERRY_TEST_SOURCE_PW') },
      target: { url: withEnv(urls.targetUrl, 'FERRY_TEST_TARGET_PW') },
      state: { path: state },
    });
    const env = { FERRY_TEST_SOURCE_PW: 'postgres', FERRY_TEST_TARGET_PW: 'postgres' };

    const plan = await ferry(['plan', path], env);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^app\.accounts +~500 rows, key \(id\), 1 range\(s\)$/m);
    expect(plan.stdout).toMatch(/^app\.orders +~2000 rows, key \(id\), 4 range\(s\)$/m);
    expect(plan.stdout).toMatch(/^ {4}id in \[-∞, \d+\)  ~\d+ rows$/m);
    expect(plan.stdout).toMatch(/^2 table\(s\), 5 range job\(s\), 2 worker\(s\)$/m);
    expect(await targetObjects(urls.targetUrl)).toEqual(NOTHING);
    expect(existsSync(state)).toBe(false);

    const before = await ferry(['status', path], env);
    expectUserError(before);
    expect(before.stderr).toContain('this flow has not run yet');
    expect(before.stderr).toContain(`ferry run ${path}`);

    const run = await ferry(['run', path], env);
    expect(run.code, run.stderr).toBe(0);

    const status = await ferry(['status', path], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^flow bad: done$/m);
    expect(status.stdout).toMatch(/^ {2}app\.accounts +1\/1 ranges +500 rows +100%$/m);
    expect(status.stdout).toMatch(/^ {2}app\.orders +4\/4 ranges +2000 rows +100%$/m);

    const json = await ferry(['status', path, '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const parsed = JSON.parse(json.stdout) as { flow: string; phase: string; tables: Record<string, { done: number; total: number; rows: number }>; failed: unknown[] };
    expect(parsed).toMatchObject({
      flow: 'bad',
      phase: 'done',
      tables: { 'app.accounts': { done: 1, total: 1, rows: 500 }, 'app.orders': { done: 4, total: 4, rows: 2000 } },
      failed: [],
    });
  });
});
