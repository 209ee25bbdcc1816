/**
 * Table controls end to end, through the real CLI on real PostgreSQL: an excluded column, a renamed column and a
 * row filter, over the snapshot and the stream, with `ferry verify` comparing the kept columns under the filter.
 * app.orders: the filter uses a column outside the replica identity, so Ferry filters the changes itself (the
 * publication carries the column list). app.events: REPLICA IDENTITY FULL, so the publication filters rows (the
 * filter is over the identity) and Ferry drops the excluded column from the changes.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, killAll, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';
import { pg15Available, startPg15 } from './support/pg15.js';
import { startCluster } from '../src/embedded/cluster.js';

const pair = usePgPair();

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.orders (id int PRIMARY KEY, region text NOT NULL, amount numeric(10,2), secret text, note text);
  CREATE INDEX orders_secret ON app.orders (secret);
  CREATE INDEX orders_note ON app.orders (note);
  ALTER TABLE app.orders ADD CONSTRAINT orders_secret_len CHECK (length(secret) < 100);
  COMMENT ON COLUMN app.orders.secret IS 'pii';
  COMMENT ON COLUMN app.orders.note IS 'free text';
  INSERT INTO app.orders SELECT g, (ARRAY['eu','us','asia'])[g % 3 + 1], g * 1.25, 's' || g, 'n' || g FROM generate_series(1, 3000) g;
  CREATE TABLE app.events (id int PRIMARY KEY, kind text, payload text, blob text);
  ALTER TABLE app.events REPLICA IDENTITY FULL;
  INSERT INTO app.events SELECT g, 'k' || (g % 5), 'p' || g, repeat('b', 50) FROM generate_series(1, 2000) g;
  ANALYZE;
`;

const TABLES = {
  'app.orders': { excludeColumns: ['secret'], renameColumns: { note: 'remark' }, where: "region = 'eu'" },
  'app.events': { excludeColumns: ['blob'], renameColumns: { kind: 'category' }, where: 'id % 2 = 0' },
};

function config(urls: { sourceUrl: string; targetUrl: string }, name: string, extra: Record<string, unknown> = {}) {
  return writeConfig({
    name,
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    mode: 'snapshot+cdc',
    rowsPerRange: 1000,
    batchRows: 500,
    workers: 2,
    cdc: { batchMs: 100, heartbeatSeconds: 1 },
    tables: TABLES,
    ...extra,
  });
}

const SOURCE_ORDERS = `SELECT id, region, amount, note FROM app.orders WHERE region = 'eu' ORDER BY id`;
const TARGET_ORDERS = `SELECT id, region, amount, remark FROM app.orders ORDER BY id`;
const SOURCE_EVENTS = `SELECT id, kind, payload FROM app.events WHERE id % 2 = 0 ORDER BY id`;
const TARGET_EVENTS = `SELECT id, category, payload FROM app.events ORDER BY id`;

/** Row count and md5 of a query's rows, in order. */
async function digest(url: string, sql: string): Promise<string> {
  const r = await query(url, `SELECT count(*) || ':' || coalesce(md5(string_agg(q::text, '|')), '') AS d FROM (${sql}) q`);
  return r[0]!.d!;
}

async function same(urls: { sourceUrl: string; targetUrl: string }): Promise<boolean> {
  const [a, b, c, d] = await Promise.all([
    digest(urls.sourceUrl, SOURCE_ORDERS),
    digest(urls.targetUrl, TARGET_ORDERS),
    digest(urls.sourceUrl, SOURCE_EVENTS),
    digest(urls.targetUrl, TARGET_EVENTS),
  ]);
  return a === b && c === d;
}



/** The whole scenario on one database pair (the source empty): plan, snapshot, stream, verify, repair, stop. */
async function scenario(urls: { sourceUrl: string; targetUrl: string }, name: string) {
  await query(urls.sourceUrl, SCHEMA);
  const cfg = config(urls, name);
  const plan = await ferry(['plan', cfg]);
  expect(plan.code, plan.stderr).toBe(0);
  expect(plan.stdout).toMatch(/controls: without secret; note -> remark; where region = 'eu' \(streamed: row filter applied by Ferry/);
  expect(plan.stdout).toContain('left out (they use an excluded column): index orders_secret, constraint orders_secret_len');
  expect(plan.stdout).toMatch(/controls: without blob; kind -> category; where id % 2 = 0 \(streamed: columns applied by Ferry/);

  const run = startFerry(['run', cfg]);
  await waitForPhase(cfg, 'streaming', 120_000, run);
  // The snapshot: kept columns, filtered rows, target names; no index or constraint of the excluded column.
  expect(await same(urls)).toBe(true);
  const cols = await query(urls.targetUrl, `SELECT string_agg(attname, ',' ORDER BY attnum) c FROM pg_attribute WHERE attrelid = 'app.orders'::regclass AND attnum > 0 AND NOT attisdropped`);
  expect(cols[0]!.c).toBe('id,region,amount,remark');
  const idx = await query(urls.targetUrl, `SELECT string_agg(indexname || '=' || indexdef, ' ' ORDER BY indexname) i FROM pg_indexes WHERE tablename = 'orders'`);
  expect(idx[0]!.i).toContain('orders_note=CREATE INDEX orders_note ON app.orders USING btree (remark)');
  expect(idx[0]!.i).not.toContain('orders_secret');
  const comment = await query(urls.targetUrl, `SELECT col_description('app.orders'::regclass, 4) c`);
  expect(comment[0]!.c).toBe('free text');
  // The publication: a column list for orders (default identity), a row filter for events (FULL identity).
  const pub = await query(urls.sourceUrl, `SELECT tablename, attnames::text a, rowfilter FROM pg_publication_tables ORDER BY tablename`);
  expect(pub).toEqual([
    { tablename: 'events', a: '{id,kind,payload,blob}', rowfilter: '((id % 2) = 0)' },
    { tablename: 'orders', a: '{id,region,amount,note}', rowfilter: null },
  ]);

  await query(urls.sourceUrl, `
    INSERT INTO app.orders VALUES (5001, 'eu', 1, 'x', 'new eu'), (5002, 'us', 2, 'y', 'new us');
    UPDATE app.orders SET region = 'us' WHERE id = 3;          -- moves out: deleted on the target
    UPDATE app.orders SET region = 'eu', note = 'in' WHERE id = 4;  -- us -> eu: moves in, inserted whole
    UPDATE app.orders SET secret = 'changed' WHERE id = 6;    -- only an excluded column
    UPDATE app.orders SET note = 'edited', amount = 9 WHERE id = 9;
    UPDATE app.orders SET amount = 0 WHERE id = 5;             -- us row, stays out
    DELETE FROM app.orders WHERE id IN (12, 13);
    UPDATE app.orders SET id = 7000 WHERE id = 15;             -- eu key change
    INSERT INTO app.events VALUES (5000, 'new', 'p', 'b'), (5001, 'odd', 'p', 'b');
    UPDATE app.events SET id = 6001 WHERE id = 10;             -- even -> odd: out (the publication sends a DELETE)
    UPDATE app.events SET id = 6002 WHERE id = 11;             -- odd -> even: in (an INSERT)
    UPDATE app.events SET kind = 'renamed', blob = 'z' WHERE id = 20;
    DELETE FROM app.events WHERE id = 30;
  `);
  try {
    await waitFor('the target to converge', () => same(urls), 60_000);
  } catch (err) {
    // What the streamer said, and where the rows stand, before failing.
    run.child.kill('SIGTERM');
    const out = await run.exited;
    console.log(out.stdout.slice(-3000), out.stderr.slice(0, 8000));
    console.log(await query(urls.targetUrl, `SELECT id, region, remark FROM app.orders WHERE id IN (3,4,5,6,9,12,13,15,5001,5002,7000) ORDER BY id`));
    console.log(await query(urls.targetUrl, `SELECT id, category FROM app.events WHERE id IN (10,11,20,30,5000,5001,6001,6002) ORDER BY id`));
    throw err;
  }
  const moved = await query(urls.targetUrl, `SELECT id, region, remark FROM app.orders WHERE id IN (3, 4, 6, 5002, 7000, 15) ORDER BY id`);
  expect(moved).toEqual([
    { id: '4', region: 'eu', remark: 'in' },
    { id: '6', region: 'eu', remark: 'n6' },
    { id: '7000', region: 'eu', remark: 'n15' },
  ]);
  const ev = await query(urls.targetUrl, `SELECT id FROM app.events WHERE id IN (10, 11, 5000, 5001, 6001, 6002) ORDER BY id`);
  expect(ev.map((r) => r.id)).toEqual(['5000', '6002']);

  const ok = await ferry(['verify', cfg]);
  expect(ok.code, ok.stdout + ok.stderr).toBe(0);
  expect(ok.stdout).toContain('verify: source and target are identical');

  // A difference in a kept column is found (and repaired from the source under the mapping).
  await query(urls.targetUrl, `UPDATE app.orders SET remark = 'tampered' WHERE id = 9`);
  const bad = await ferry(['verify', cfg]);
  expect(bad.code).not.toBe(0);
  expect(bad.stdout + bad.stderr).toMatch(/app\.orders/);
  const repair = await ferry(['verify', cfg, '--repair']);
  expect(repair.code, repair.stdout + repair.stderr).toBe(0);
  expect(await same(urls)).toBe(true);

  const stop = await ferry(['stop', cfg]);
  expect(stop.code, stop.stderr).toBe(0);
  const ended = await run.exited;
  expect(ended.code, ended.stderr).toBe(0);
  expect(await same(urls)).toBe(true);
}

describe('table controls', () => {
  it('copies and streams only the kept columns of the filtered rows, renamed; verify compares them', async () => {
    await scenario(await freshDatabases(pair(), 'ctl'), 'ctl');
  });

  it('plan refuses bad controls, naming the table and the column', async () => {
    const urls = await freshDatabases(pair(), 'ctlbad');
    await query(urls.sourceUrl, SCHEMA);
    const planWith = async (tables: Record<string, unknown>) => {
      const r = await ferry(['plan', config(urls, 'ctlbad', { tables })]);
      expect(r.code).not.toBe(0);
      return r.stderr + r.stdout;
    };
    expect(await planWith({ 'app.orders': { excludeColumns: ['nope'] } })).toMatch(/tables\."app\.orders"\.excludeColumns: app\.orders has no column `nope`/);
    expect(await planWith({ 'app.orders': { excludeColumns: ['id'] } })).toMatch(/`id` is part of the primary key of app\.orders/);
    expect(await planWith({ 'app.orders': { renameColumns: { note: 'amount' } } })).toMatch(/`note` -> `amount` clashes with the column `amount` of app\.orders/);
    expect(await planWith({ 'app.orders': { where: "regio = 'eu'" } })).toMatch(/tables\."app\.orders"\.where: the source refuses the row filter `regio = 'eu'`: column "regio" does not exist/);
    expect(await planWith({ 'app.orders': { where: 'amount +' } })).toMatch(/tables\."app\.orders"\.where: the source refuses the row filter .*syntax error/);
    expect(await planWith({ 'app.orders': { where: 'amount' } })).toMatch(/argument of WHERE must be type boolean/);
    expect(await planWith({ 'app.order': { where: 'true' } })).toMatch(/tables `app\.order` names no selected table/);
  });
});

// PostgreSQL 15 is the oldest server with publication column lists and row filters, and the usual upgrade source.
describe.skipIf(!pg15Available())('table controls from a PostgreSQL 15 source', () => {
  it('behaves the same', async () => {
    const [source, target] = await Promise.all([startPg15({ logical: true }), startCluster()]);
    try {
      await Promise.all([source.createDatabase('src'), target.createDatabase('dst')]);
      await scenario({ sourceUrl: source.urlFor('src'), targetUrl: target.urlFor('dst') }, 'ctl15');
    } finally {
      killAll();
      await Promise.allSettled([source.stop(), target.stop()]);
    }
  });
});
