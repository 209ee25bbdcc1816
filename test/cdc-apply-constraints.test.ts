/**
 * The apply is correct for every constraint the source can satisfy: source transactions that only succeed in the
 * order the source ran them (a swap of UNIQUE values or of keys through a temporary value, an exclusion constraint,
 * a child before its parent under deferred foreign keys, a self-referencing table), identity ALWAYS columns written
 * by UPDATE, and target triggers that must not fire on Ferry's writes (snapshot and stream) but fire for the
 * application after cutover. Each table is compared whole on both sides (count and md5 of the ordered rows).
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, writeConfig, type Running } from './support/ferry-cli.js';

const pair = usePgPair();

function cdcConfig(urls: { sourceUrl: string; targetUrl: string }, name: string) {
  return writeConfig({
    name,
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    mode: 'snapshot+cdc',
    workers: 2,
    cdc: { batchMs: 200, heartbeatSeconds: 1 },
  });
}

const tableHash = (table: string, order: string) =>
  `SELECT count(*)::text AS n, coalesce(md5(string_agg(t::text, '|' ORDER BY ${order})), '') AS h FROM ${table} t`;

/** Poll until the target holds what the source holds for every table, or the run exits (an apply failure). */
async function converged(urls: { sourceUrl: string; targetUrl: string }, run: Running, tables: Record<string, string>) {
  let exited: string | undefined;
  void run.exited.then((e) => (exited = `ferry run exited ${e.code}: ${e.stderr}`));
  let differing: string[] = [];
  await waitFor('the target to converge', async () => {
    if (exited) throw new Error(exited);
    differing = [];
    for (const [t, order] of Object.entries(tables)) {
      const [s] = await query(urls.sourceUrl, tableHash(t, order));
      const [d] = await query(urls.targetUrl, tableHash(t, order));
      if (s!.n !== d!.n || s!.h !== d!.h) differing.push(t);
    }
    return differing.length === 0;
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${differing.join(', ')} differ`);
  });
}

async function stopAndVerify(cfg: string, run: Running) {
  const stop = await ferry(['stop', cfg]);
  expect(stop.code, stop.stderr).toBe(0);
  const ended = await run.exited;
  expect(ended.code, ended.stderr).toBe(0);
  const verify = await ferry(['verify', cfg]);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
}

const streaming = (cfg: string) =>
  waitFor('streaming', async () => (await ferry(['status', cfg, '--json'])).stdout.includes('"phase": "streaming"'), 90_000);

describe('apply: constraints the source satisfies never fail on the target', () => {
  it('unique and key swaps, exclusion, deferred and self-referencing foreign keys, identity ALWAYS', async () => {
    const urls = await freshDatabases(pair(), 'cons');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.slots (id int PRIMARY KEY, code text NOT NULL UNIQUE, n int);
      INSERT INTO app.slots SELECT g, 'c' || g, 0 FROM generate_series(1, 50) g;
      CREATE TABLE app.keys (id int PRIMARY KEY, v text);
      INSERT INTO app.keys SELECT g, 'v' || g FROM generate_series(1, 20) g;
      CREATE TABLE app.shifted (id int PRIMARY KEY, v text);
      INSERT INTO app.shifted SELECT g, 'v' || g FROM generate_series(1, 20) g;
      CREATE TABLE app.booking (id int PRIMARY KEY, during int4range NOT NULL, EXCLUDE USING gist (during WITH &&));
      INSERT INTO app.booking VALUES (1, '[1,5)'), (2, '[5,10)');
      CREATE TABLE app.parent (id int PRIMARY KEY, v text);
      CREATE TABLE app.child (id int PRIMARY KEY, parent_id int REFERENCES app.parent DEFERRABLE INITIALLY IMMEDIATE);
      INSERT INTO app.parent VALUES (1, 'p1');
      INSERT INTO app.child VALUES (1, 1);
      CREATE TABLE app.node (id int PRIMARY KEY, parent_id int REFERENCES app.node DEFERRABLE INITIALLY IMMEDIATE, v text);
      INSERT INTO app.node VALUES (1, NULL, 'root');
      CREATE TABLE app.tickets (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), no bigint GENERATED ALWAYS AS IDENTITY, state text);
      INSERT INTO app.tickets (state) SELECT 'open' FROM generate_series(1, 30);
      CREATE TABLE app.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
      INSERT INTO app.events (v) SELECT 'e' || g FROM generate_series(1, 30) g;
      CREATE TABLE app.journal (no bigint GENERATED ALWAYS AS IDENTITY, msg text);
      ALTER TABLE app.journal REPLICA IDENTITY FULL;
      INSERT INTO app.journal (msg) SELECT 'j' || g FROM generate_series(1, 10) g;
    `);
    const cfg = cdcConfig(urls, 'cons');
    const run = startFerry(['run', cfg]);
    await streaming(cfg);
    await query(urls.sourceUrl, `
      -- UNIQUE swap through a temporary value, in one transaction (merged, it violates the index every time).
      BEGIN;
      UPDATE app.slots SET code = 'tmp' WHERE id = 1;
      UPDATE app.slots SET code = 'c1' WHERE id = 2;
      UPDATE app.slots SET code = 'c2' WHERE id = 1;
      COMMIT;
      -- A rotation over many rows, and ordinary updates of the same columns mixed in.
      BEGIN;
      UPDATE app.slots SET code = 'x' || id WHERE id BETWEEN 10 AND 20;
      UPDATE app.slots SET code = 'c' || (30 - id), n = n + 1 WHERE id BETWEEN 10 AND 20;
      UPDATE app.slots SET n = n + 1 WHERE id > 30;
      COMMIT;
      -- Primary key swap through a temporary key.
      BEGIN;
      UPDATE app.keys SET id = 100 WHERE id = 1;
      UPDATE app.keys SET id = 1 WHERE id = 2;
      UPDATE app.keys SET id = 2 WHERE id = 100;
      COMMIT;
      -- Every key moves by one, in an order the immediate key allows (highest first), in one statement.
      CREATE TEMP TABLE o AS SELECT id FROM app.shifted ORDER BY id DESC;
      DO $$ DECLARE r record; BEGIN FOR r IN SELECT id FROM o LOOP UPDATE app.shifted SET id = id + 1 WHERE id = r.id; END LOOP; END $$;
      UPDATE app.shifted SET v = v || '!' WHERE id % 2 = 0;
      -- Exclusion constraint: two ranges swapped through a temporary one.
      BEGIN;
      UPDATE app.booking SET during = '[100,101)' WHERE id = 1;
      UPDATE app.booking SET during = '[1,5)' WHERE id = 2;
      UPDATE app.booking SET during = '[5,10)' WHERE id = 1;
      COMMIT;
      -- Child before its parent, with the foreign key deferred for the transaction.
      BEGIN;
      SET CONSTRAINTS ALL DEFERRED;
      INSERT INTO app.child VALUES (2, 2);
      DELETE FROM app.child WHERE id = 1;
      INSERT INTO app.parent VALUES (2, 'p2');
      COMMIT;
      -- Self-reference: a node whose parent arrives later in the same transaction.
      BEGIN;
      SET CONSTRAINTS ALL DEFERRED;
      INSERT INTO app.node VALUES (10, 11, 'leaf');
      UPDATE app.node SET v = 'root!' WHERE id = 1;
      INSERT INTO app.node VALUES (11, 1, 'branch');
      COMMIT;
      -- Identity ALWAYS outside the key: ordinary updates, and one that gives the row a new identity value.
      UPDATE app.tickets SET state = 'closed' WHERE no <= 10;
      UPDATE app.tickets SET no = DEFAULT, state = 'renumbered' WHERE no = 20;
      INSERT INTO app.tickets (state) VALUES ('new');
      -- Identity ALWAYS as the key: a key move through DEFAULT, and updates.
      UPDATE app.events SET id = DEFAULT WHERE id = 3;
      UPDATE app.events SET v = v || '!' WHERE id <= 5;
      -- Keyless, with an identity ALWAYS column: matched on the old row, the identity kept or renewed.
      UPDATE app.journal SET msg = msg || '!' WHERE no <= 3;
      UPDATE app.journal SET no = DEFAULT WHERE no = 5;
      INSERT INTO app.journal (msg) VALUES ('new');
    `);
    await converged(urls, run, {
      'app.slots': 'id', 'app.keys': 'id', 'app.shifted': 'id', 'app.booking': 'id', 'app.parent': 'id',
      'app.child': 'id', 'app.node': 'id', 'app.tickets': 'id', 'app.events': 'id', 'app.journal': 'no, msg',
    });
    const [t] = await query(urls.targetUrl, `SELECT no::text FROM app.tickets WHERE state = 'renumbered'`);
    expect(Number(t!.no)).toBeGreaterThan(30);
    await stopAndVerify(cfg, run);
    // Cutover: the identity columns are still ALWAYS on the target, and the application's next insert gets a new value.
    const [id] = await query(urls.targetUrl, `SELECT attidentity FROM pg_attribute WHERE attrelid = 'app.tickets'::regclass AND attname = 'no'`);
    expect(id!.attidentity).toBe('a');
    const [next] = await query(urls.targetUrl, `INSERT INTO app.tickets (state) VALUES ('app') RETURNING no::text`);
    const [max] = await query(urls.sourceUrl, `SELECT max(no)::text AS m FROM app.tickets`);
    expect(Number(next!.no)).toBeGreaterThan(Number(max!.m));
  });

  it('target triggers and foreign keys do not fire on the snapshot or the stream, and fire for the application after cutover', async () => {
    const urls = await freshDatabases(pair(), 'trig');
    const orders = `CREATE TABLE app.orders (id int PRIMARY KEY, total int, customer int)`;
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      ${orders};
      INSERT INTO app.orders SELECT g, g * 10, g % 5 FROM generate_series(1, 2000) g;
    `);
    // The target already has the table, with an audit trigger and a foreign key to a table outside the flow that is
    // empty: either would fire (or refuse every row) if Ferry's writes ran as an ordinary session.
    await query(urls.targetUrl, `
      CREATE SCHEMA app; CREATE SCHEMA audit;
      CREATE TABLE audit.customers (id int PRIMARY KEY);
      ${orders};
      ALTER TABLE app.orders ADD FOREIGN KEY (customer) REFERENCES audit.customers;
      CREATE TABLE audit.log (at timestamptz DEFAULT now(), op text, id int);
      CREATE FUNCTION audit.record() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO audit.log (op, id) VALUES (TG_OP, coalesce(NEW.id, OLD.id)); RETURN NULL; END $$;
      CREATE TRIGGER orders_audit AFTER INSERT OR UPDATE OR DELETE ON app.orders FOR EACH ROW EXECUTE FUNCTION audit.record();
    `);
    const cfg = cdcConfig(urls, 'trig');
    const run = startFerry(['run', cfg]);
    await streaming(cfg);
    await query(urls.sourceUrl, `
      INSERT INTO app.orders SELECT g, g, 1 FROM generate_series(5001, 5300) g;
      UPDATE app.orders SET total = total + 1 WHERE id % 7 = 0;
      DELETE FROM app.orders WHERE id % 11 = 0;
    `);
    await converged(urls, run, { 'app.orders': 'id' });
    const [during] = await query(urls.targetUrl, `SELECT count(*) AS n FROM audit.log`);
    expect(during!.n).toBe('0');
    await stopAndVerify(cfg, run);
    // After cutover the application's own sessions fire the trigger (and the foreign key) as usual.
    await query(urls.targetUrl, `INSERT INTO audit.customers VALUES (1); UPDATE app.orders SET total = 0 WHERE id = 1`);
    const after = await query(urls.targetUrl, `SELECT op, id::text FROM audit.log`);
    expect(after).toEqual([{ op: 'UPDATE', id: '1' }]);
    await expect(query(urls.targetUrl, `INSERT INTO app.orders VALUES (9999999, 1, 4)`)).rejects.toThrow(/foreign key/);
  });

  it('a change the target refuses stops the apply with the table, the operation, the key and the source position', async () => {
    const urls = await freshDatabases(pair(), 'refused');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY, qty int); INSERT INTO app.items VALUES (1, 1)`);
    const cfg = cdcConfig(urls, 'refused');
    const run = startFerry(['run', cfg]);
    await streaming(cfg);
    await query(urls.sourceUrl, `INSERT INTO app.items VALUES (2, 5)`);
    await waitFor('the first change applied', async () => (await query(urls.targetUrl, `SELECT 1 FROM app.items WHERE id = 2`)).length > 0);
    // Someone added a constraint on the target that the source does not have.
    await query(urls.targetUrl, `ALTER TABLE app.items ADD CONSTRAINT qty_small CHECK (qty < 100)`);
    await query(urls.sourceUrl, `INSERT INTO app.items VALUES (3, 500)`);
    const ended = await run.exited;
    expect(ended.code).toBe(1);
    expect(ended.stderr).not.toContain('unexpected error');
    expect(ended.stderr).toContain('the target refused INSERT of app.items (key id=3');
    expect(ended.stderr).toMatch(/source transaction (at|after) position [0-9A-F]+\/[0-9A-F]+/);
    expect(ended.stderr).toContain('violates check constraint "qty_small"');
    expect(ended.stderr).toContain('SQLSTATE 23514');
    expect(ended.stderr).not.toMatch(/\n\s+at /); // no stack
  });
});
