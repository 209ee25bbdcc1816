/**
 * Schema changes, partitions and new tables while `ferry run` streams, end to end through the real CLI on real
 * PostgreSQL: the stream hooks wired into the streamer (src/runtime/stream-flow.ts), then both sides compared whole.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

async function fingerprint(url: string, table: string, order: string) {
  const cols = await query(url, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) c
    FROM pg_attribute WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped`);
  const rows = await query(url, `SELECT count(*) n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')) h FROM ${table} t`);
  return { columns: cols[0]!.c, ...rows[0] };
}

describe('ferry run follows the source schema while streaming', () => {
  it('columns, a leaf TRUNCATE, new and attached partitions, a new table: all converge', async () => {
    const urls = await freshDatabases(pair(), 'e2evolve');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id int PRIMARY KEY, note text);
      CREATE TABLE app.m (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE app.m1 PARTITION OF app.m FOR VALUES FROM (0) TO (100);
      CREATE TABLE app.m2 PARTITION OF app.m FOR VALUES FROM (100) TO (200);
      INSERT INTO app.orders SELECT g, 'n' || g FROM generate_series(1, 300) g;
      INSERT INTO app.m SELECT g, g % 200, 'v' || g FROM generate_series(1, 600) g;
      ANALYZE;`);
    const cfg = writeConfig({
      name: 'e2evolve',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['app.*'],
      mode: 'snapshot+cdc',
      cdc: { batchMs: 200, heartbeatSeconds: 1 },
    });
    const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'warn' });
    await waitForPhase(cfg, 'streaming', 90_000);

    await query(urls.sourceUrl, `
      ALTER TABLE app.orders ADD COLUMN status text NOT NULL DEFAULT 'new';
      INSERT INTO app.orders VALUES (301, 'with status', 'paid');
      ALTER TABLE app.orders RENAME COLUMN note TO remark;
      UPDATE app.orders SET remark = 'r' WHERE id % 3 = 0;
      TRUNCATE app.m1;
      INSERT INTO app.m VALUES (5000, 5, 'after truncate');
      CREATE TABLE app.m3 PARTITION OF app.m FOR VALUES FROM (200) TO (300);
      INSERT INTO app.m SELECT g, 200 + g % 100, 'm3' FROM generate_series(2000, 2049) g;
      CREATE TABLE app.m4 (id int, at int, v text, PRIMARY KEY (id, at));
      INSERT INTO app.m4 SELECT g, 300 + g % 100, 'pre-attach' FROM generate_series(3000, 3099) g;
      ALTER TABLE app.m ATTACH PARTITION app.m4 FOR VALUES FROM (300) TO (400);
      CREATE TABLE app.fresh (id bigint PRIMARY KEY, v text);
      INSERT INTO app.fresh SELECT g, 'f' || g FROM generate_series(1, 200) g;`);
    // The poller (every 5 s) finds the attached partition and the new table; their rows then stream.
    await waitFor('the attached partition resynced', async () => (await query(urls.targetUrl, `SELECT to_regclass('app.m4') IS NOT NULL AND (SELECT count(*) FROM app.m WHERE at >= 300) = 100 AS ok`).catch(() => [{ ok: 'f' }]))[0]!.ok === 't', 60_000);
    await waitFor('the new table copied', async () => (await query(urls.targetUrl, `SELECT to_regclass('app.fresh') IS NOT NULL AS ok`))[0]!.ok === 't', 60_000);
    await query(urls.sourceUrl, `
      UPDATE app.fresh SET v = 'streamed' WHERE id <= 20;
      UPDATE app.m SET v = 'post-attach' WHERE id BETWEEN 3000 AND 3009;
      INSERT INTO app.orders VALUES (302, 'late', 'x');`);
    await waitFor('later changes streamed', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM app.orders WHERE id = 302`))[0]!.n === '1', 30_000);

    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    for (const [t, order] of [['app.orders', 'id'], ['app.m', 'id, at'], ['app.m1', 'id, at'], ['app.m3', 'id, at'], ['app.m4', 'id, at'], ['app.fresh', 'id']] as const) {
      expect(await fingerprint(urls.targetUrl, t, order), t).toEqual(await fingerprint(urls.sourceUrl, t, order));
    }
    // (The hooks' warnings are not asserted: the log sink closes when streaming starts, issue 7 item 9, stream's.)
    const verify = await ferry(['verify', cfg]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('verify: source and target are identical');
  });

  it('converges after kill -9 while the schema changes are being replayed, and after a restart', async () => {
    const urls = await freshDatabases(pair(), 'e2ekill');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id int PRIMARY KEY, note text);
      CREATE TABLE app.m (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE app.m1 PARTITION OF app.m FOR VALUES FROM (0) TO (100);
      INSERT INTO app.orders SELECT g, 'n' || g FROM generate_series(1, 300) g;
      INSERT INTO app.m SELECT g, g % 100, 'v' || g FROM generate_series(1, 300) g;
      ANALYZE;`);
    const cfg = writeConfig({
      name: 'e2ekill',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['app.*'],
      mode: 'snapshot+cdc',
      cdc: { batchMs: 200, heartbeatSeconds: 1 },
    });
    const first = startFerry(['run', cfg]);
    await waitForPhase(cfg, 'streaming', 90_000);
    await query(urls.sourceUrl, `
      ALTER TABLE app.orders ADD COLUMN status text NOT NULL DEFAULT 'new';
      INSERT INTO app.orders SELECT g, 'k', 'paid' FROM generate_series(301, 5300) g;
      ALTER TABLE app.orders RENAME COLUMN note TO remark;
      CREATE TABLE app.m2 (id int, at int, v text, PRIMARY KEY (id, at));
      INSERT INTO app.m2 SELECT g, 100 + g % 100, 'pre-attach' FROM generate_series(1000, 1199) g;
      ALTER TABLE app.m ATTACH PARTITION app.m2 FOR VALUES FROM (100) TO (200);`);
    // Kill as soon as the target has the new column: the rename, the attach resync or both are still to come.
    await waitFor('the added column on the target', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'status'`))[0]!.n === '1', 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await query(urls.sourceUrl, `UPDATE app.orders SET remark = 'after kill' WHERE id % 5 = 0; INSERT INTO app.m VALUES (7, 150, 'after kill');`);
    const second = startFerry(['run', cfg]);
    await waitForPhase(cfg, 'streaming', 60_000);
    await waitFor('the attached partition on the target', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM app.m WHERE at >= 100`).catch(() => [{ n: '0' }]))[0]!.n === '201', 60_000);
    await waitFor('the rename replayed', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'remark'`))[0]!.n === '1', 30_000);
    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await second.exited;
    expect(ended.code, ended.stderr).toBe(0);
    for (const [t, order] of [['app.orders', 'id'], ['app.m', 'id, at'], ['app.m2', 'id, at']] as const) {
      expect(await fingerprint(urls.targetUrl, t, order), t).toEqual(await fingerprint(urls.sourceUrl, t, order));
    }
  });
});
