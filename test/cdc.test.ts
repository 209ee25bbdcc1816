/**
 * Snapshot then stream, through the real CLI on real PostgreSQL (source with wal_level=logical): a live workload
 * during the copy, a streamer killed with SIGKILL in the middle of a large transaction, and `ferry verify` as the
 * oracle throughout.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.accounts (id bigint PRIMARY KEY, email text NOT NULL, balance numeric(20,2), note text);
  CREATE TABLE app.lines (order_id int, line_no int, qty int, PRIMARY KEY (order_id, line_no));
  CREATE TABLE app.log (at timestamp, message text);
  ALTER TABLE app.log REPLICA IDENTITY FULL;
  CREATE TABLE app.docs (id int PRIMARY KEY, title text, body text);
  CREATE TABLE app.ignored (id int PRIMARY KEY, v text);
  CREATE TABLE app.seqd (id serial PRIMARY KEY, v text);
  INSERT INTO app.seqd (v) SELECT 'v' || g FROM generate_series(1, 100) g;
  INSERT INTO app.accounts SELECT g, 'u' || g || '@example.com', g * 1.5, NULL FROM generate_series(1, 30000) g;
  INSERT INTO app.lines SELECT o, l, (o + l) % 9 FROM generate_series(1, 5000) o, generate_series(1, 3) l;
  INSERT INTO app.log SELECT timestamp '2024-01-01' + g * interval '1 s', 'm' || g FROM generate_series(1, 8000) g;
  -- Bodies above 2 kB are TOASTed: updates that leave them alone send no value for them.
  INSERT INTO app.docs SELECT g, 't' || g, repeat(md5(g::text), 400) FROM generate_series(1, 300) g;
  INSERT INTO app.ignored VALUES (1, 'x');
  ANALYZE;
`;

function cdcConfig(urls: { sourceUrl: string; targetUrl: string }, name: string, extra: Record<string, unknown> = {}) {
  return writeConfig({
    name,
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    exclude: ['app.ignored'],
    mode: 'snapshot+cdc',
    rowsPerRange: 5000,
    batchRows: 2000,
    workers: 2,
    cdc: { batchMs: 200, heartbeatSeconds: 1 },
    ...extra,
  });
}

/** A mixed workload: inserts, updates (some leaving TOASTed bodies alone), deletes, key changes, keyless changes. */
async function workload(url: string, round: number) {
  const base = 100_000 + round * 1000;
  await query(url, `
    BEGIN;
    INSERT INTO app.accounts SELECT g, 'n' || g || '@example.com', g, 'new' FROM generate_series(${base}, ${base + 199}) g;
    UPDATE app.accounts SET balance = balance + 1, note = 'r${round}' WHERE id % 97 = ${round % 97};
    DELETE FROM app.accounts WHERE id % 89 = ${round % 89} AND id < 30000;
    COMMIT;
    UPDATE app.accounts SET id = id + 1000000 WHERE id = ${1000 + round};
    UPDATE app.lines SET qty = qty + 1 WHERE order_id % 50 = ${round % 50};
    UPDATE app.lines SET line_no = line_no + 10 WHERE order_id = ${2000 + round} AND line_no = 1;
    DELETE FROM app.lines WHERE order_id = ${3000 + round};
    UPDATE app.docs SET title = 'r${round}' WHERE id % 10 = ${round % 10};
    UPDATE app.docs SET body = repeat('b${round}', 3000) WHERE id = ${1 + round};
    INSERT INTO app.log VALUES (now()::timestamp, 'round ${round}');
    UPDATE app.log SET message = message || '!' WHERE message = 'm${round + 1}';
    DELETE FROM app.log WHERE message = 'm${round + 100}';
    UPDATE app.ignored SET v = 'r${round}';
    INSERT INTO app.seqd (v) SELECT 'r${round}' FROM generate_series(1, 10);
  `);
}

async function stopAndVerify(cfg: string, run: ReturnType<typeof startFerry>) {
  const stop = await ferry(['stop', cfg]);
  expect(stop.code, stop.stderr).toBe(0);
  const ended = await run.exited;
  expect(ended.code, ended.stderr).toBe(0);
  const verify = await ferry(['verify', cfg]);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  expect(verify.stdout).toContain('verify: source and target are identical');
  return verify;
}

describe('snapshot + CDC', () => {
  it('converges under a live workload that runs while the snapshot copies, and verify agrees', async () => {
    const urls = await freshDatabases(pair(), 'live');
    await query(urls.sourceUrl, SCHEMA);
    const cfg = cdcConfig(urls, 'live');
    const run = startFerry(['run', cfg]);
    let rounds = 0;
    // Keep writing through the whole snapshot and into streaming.
    const streaming = waitForPhase(cfg, 'streaming', 90_000, run);
    let done = false;
    void streaming.then(() => (done = true), () => (done = true));
    while (!done) await workload(urls.sourceUrl, rounds++);
    await streaming;
    for (let i = 0; i < 5; i++) await workload(urls.sourceUrl, rounds++);
    expect(rounds).toBeGreaterThan(5);
    await stopAndVerify(cfg, run);

    // The excluded table was never created, and the target's row counts are the source's.
    const ignored = await query(urls.targetUrl, `SELECT to_regclass('app.ignored') AS t`);
    expect(ignored[0]!.t).toBeNull();
    const counts = `SELECT (SELECT count(*) FROM app.accounts) a, (SELECT count(*) FROM app.lines) l, (SELECT count(*) FROM app.log) g`;
    expect(await query(urls.targetUrl, counts)).toEqual(await query(urls.sourceUrl, counts));
    // `ferry stop` set the target's sequences from the source again: the next id on the target is a new one.
    const seq = await query(urls.targetUrl, `SELECT nextval('app.seqd_id_seq') > (SELECT max(id) FROM app.seqd) AS ok`);
    expect(seq[0]!.ok).toBe('t');
    // Bodies left alone by updates were not nulled.
    const nulls = await query(urls.targetUrl, `SELECT count(*) n FROM app.docs WHERE body IS NULL`);
    expect(nulls[0]!.n).toBe('0');

    const status = await ferry(['status', cfg]);
    expect(status.stdout).toMatch(/slot: inactive/);
    const cleanup = await ferry(['cleanup', cfg]);
    expect(cleanup.code, cleanup.stderr).toBe(0);
    const slots = await query(urls.sourceUrl, `SELECT count(*) n FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots[0]!.n).toBe('0');
    const pubs = await query(urls.sourceUrl, `SELECT count(*) n FROM pg_publication`);
    expect(pubs[0]!.n).toBe('0');
  });

  it('survives SIGKILL in the middle of a large transaction: no duplicates, no gaps', async () => {
    const urls = await freshDatabases(pair(), 'kill');
    await query(urls.sourceUrl, SCHEMA);
    const cfg = cdcConfig(urls, 'kill');
    const first = startFerry(['run', cfg]);
    await waitForPhase(cfg, 'streaming', 90_000, first);
    // One large transaction, into a keyed and a keyless table (a replayed keyless insert would duplicate rows).
    await query(urls.sourceUrl, `
      BEGIN;
      INSERT INTO app.accounts SELECT g, 'big' || g, g, repeat('x', 100) FROM generate_series(200000, 349999) g;
      INSERT INTO app.log SELECT timestamp '2025-01-01' + g * interval '1 s', 'big' FROM generate_series(1, 50000) g;
      UPDATE app.accounts SET note = 'touched' WHERE id <= 30000;
      COMMIT;`);
    // Kill while the target has that transaction open and uncommitted.
    await waitFor('an open apply transaction', async () => {
      const rows = await query(urls.targetUrl, `SELECT count(*) n FROM pg_stat_activity WHERE application_name = 'ferry-target' AND xact_start IS NOT NULL AND state <> 'idle'`);
      return rows[0]!.n !== '0';
    }, 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const partial = await query(urls.targetUrl, `SELECT count(*) n FROM app.accounts WHERE id >= 200000`);
    expect(partial[0]!.n).toBe('0'); // nothing of the open transaction is visible

    await workload(urls.sourceUrl, 1);
    const second = startFerry(['run', cfg]);
    await waitForPhase(cfg, 'streaming', 60_000, second);
    await stopAndVerify(cfg, second);
    const counts = `SELECT (SELECT count(*) FROM app.accounts) a, (SELECT count(*) FROM app.log) g, (SELECT count(*) FROM app.log WHERE message = 'big') b`;
    expect(await query(urls.targetUrl, counts)).toEqual(await query(urls.sourceUrl, counts));
  });

  it('refuses a source that cannot stream, naming each fix, before writing anything', async () => {
    const urls = await freshDatabases(pair(), 'pre');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.nokey (a int); CREATE TABLE app.ok (id int PRIMARY KEY)`);
    const cfg = cdcConfig(urls, 'pre');
    const r = await ferry(['run', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('app.nokey has no primary key');
    expect(r.stderr).toContain('REPLICA IDENTITY FULL');
    const made = await query(urls.targetUrl, `SELECT count(*) n FROM pg_namespace WHERE nspname IN ('app', '_ferry')`);
    expect(made[0]!.n).toBe('0');
    const slots = await query(urls.sourceUrl, `SELECT count(*) n FROM pg_replication_slots WHERE database = current_database()`);
    expect(slots[0]!.n).toBe('0');

    // A target cluster has wal_level=replica: as a CDC source it is refused with the setting to change.
    const reverse = writeConfig({ name: 'rev', source: { url: urls.targetUrl }, target: { url: urls.sourceUrl }, mode: 'snapshot+cdc' });
    await query(urls.targetUrl, `CREATE TABLE public.t (id int PRIMARY KEY)`);
    const r2 = await ferry(['run', reverse]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('wal_level = logical');
  });

  it('verify finds a damaged range and --repair copies it again', async () => {
    const urls = await freshDatabases(pair(), 'repair');
    await query(urls.sourceUrl, SCHEMA);
    const cfg = writeConfig({
      name: 'repair', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'], rowsPerRange: 5000, batchRows: 2000, workers: 2,
    });
    expect((await ferry(['run', cfg])).code).toBe(0);
    expect((await ferry(['verify', cfg])).code).toBe(0);
    await query(urls.targetUrl, `UPDATE app.accounts SET email = 'tampered' WHERE id = 12345; DELETE FROM app.lines WHERE order_id = 7; DELETE FROM app.log WHERE message = 'm5'`);
    const bad = await ferry(['verify', cfg]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/range app\.accounts id in \[\d+, \d+\): source \d+ rows, target \d+ rows \(values differ\)/);
    expect(bad.stdout).toMatch(/app\.lines/);
    expect(bad.stdout).toMatch(/app\.log whole table/);
    const fixed = await ferry(['verify', cfg, '--repair']);
    expect(fixed.code, fixed.stdout).toBe(0);
    expect((await ferry(['verify', cfg])).code).toBe(0);
  });
});
