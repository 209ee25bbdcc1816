/**
 * The apply's merged statements (COPY runs, per-key folding, set-based updates and deletes) leave exactly what the
 * source holds. Changes come from real WAL (a slot read with pg_logical_slot_get_binary_changes) and go through the
 * real PgChangeTarget in one batch, in one apply call and again in small odd-sized calls; each table is then
 * compared whole with the source (count and md5 of the ordered rows).
 */
import { describe, expect, it } from 'vitest';
import { describeTables } from '../src/adapters/postgres/introspect.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { applyAll, changesOf, expectSame, withClient } from './support/apply-harness.js';

const pair = usePgPair();

const SETUP = `
  CREATE SCHEMA app;
  CREATE TABLE app.events (id bigint PRIMARY KEY, a int, title text, body text);
  ALTER TABLE app.events ALTER body SET STORAGE EXTERNAL;
  INSERT INTO app.events SELECT g, g, 't' || g, CASE WHEN g % 2 = 0 THEN repeat(md5(g::text), 100) ELSE 'b' || g END FROM generate_series(1, 400) g;
  CREATE TABLE app.lines (order_id int, line_no int, qty int, note text, PRIMARY KEY (order_id, line_no));
  INSERT INTO app.lines SELECT o, l, o + l, NULL FROM generate_series(1, 100) o, generate_series(1, 3) l;
  CREATE TABLE app.slots (id int PRIMARY KEY, code text NOT NULL UNIQUE, n int);
  INSERT INTO app.slots SELECT g, 'c' || g, 0 FROM generate_series(1, 20) g;
  CREATE TABLE app.tickets (id int PRIMARY KEY, no bigint GENERATED ALWAYS AS IDENTITY, state text);
  INSERT INTO app.tickets (id, state) SELECT g, 'open' FROM generate_series(1, 30) g;
  CREATE TABLE app.keyless (v int, w text);
  ALTER TABLE app.keyless REPLICA IDENTITY FULL;
  INSERT INTO app.keyless SELECT g, 'w' || g FROM generate_series(1, 10) g;
`;

const ORDER: Record<string, string> = {
  'app.events': 'id', 'app.lines': 'order_id, line_no', 'app.slots': 'id', 'app.tickets': 'id', 'app.keyless': 'v, w',
};

/** Source and target with the same tables and rows, a publication and a slot: what follows is streamed. */
async function setup(name: string, targetExtra = '') {
  const urls = await freshDatabases(pair(), name);
  await query(urls.sourceUrl, SETUP);
  await query(urls.targetUrl, SETUP + targetExtra);
  await query(urls.targetUrl, `SELECT setval(pg_get_serial_sequence('app.tickets', 'no'), 1000)`);
  await query(urls.sourceUrl, `CREATE PUBLICATION p FOR TABLES IN SCHEMA app`);
  await query(urls.sourceUrl, `SELECT pg_create_logical_replication_slot('s_${name}', 'pgoutput')`);
  const tables = await withClient(urls.sourceUrl, (c) => describeTables(c, { include: ['app.*'], exclude: [], rename: {} }));
  return { urls, tables, slot: `s_${name}` };
}

/** Inserts, deletes and inserts again of the same keys, updates of mixed column sets, interleaved tables. */
const WORKLOAD = `
  BEGIN;
  INSERT INTO app.events SELECT g, g, 'n' || g, 'nb' || g FROM generate_series(1001, 4000) g;
  DELETE FROM app.events WHERE id BETWEEN 1500 AND 2000;
  INSERT INTO app.events SELECT g, -g, 'again' || g, 'ab' || g FROM generate_series(1500, 1700) g;
  UPDATE app.events SET a = a + 1 WHERE id % 7 = 0;
  DELETE FROM app.events WHERE id = 1600;
  INSERT INTO app.events VALUES (1600, 0, 'third', 'x');
  UPDATE app.events SET title = title || '!' WHERE id % 3 = 0;
  UPDATE app.events SET body = repeat('z', 3000) || id WHERE id % 5 = 0 AND id <= 400;
  UPDATE app.events SET a = 0 WHERE id % 4 = 0 AND id <= 400;
  DELETE FROM app.events WHERE id BETWEEN 300 AND 320;
  INSERT INTO app.events VALUES (310, 1, 'back', 'short');
  COMMIT;
  DO $$ BEGIN FOR i IN 1..150 LOOP
    INSERT INTO app.lines VALUES (1000 + i, 1, i, 'new');
    UPDATE app.events SET a = i WHERE id = 3000 + i;
    UPDATE app.lines SET qty = qty + i WHERE order_id = i AND line_no = 2;
    IF i % 10 = 0 THEN DELETE FROM app.lines WHERE order_id = 1000 + i - 5; END IF;
    UPDATE app.tickets SET state = 's' || i WHERE id = i % 30 + 1;
  END LOOP; END $$;
  -- A unique swap through a temporary value, between changes of foldable tables.
  BEGIN;
  UPDATE app.slots SET code = 'tmp' WHERE id = 1;
  INSERT INTO app.events VALUES (9001, 1, 'between', 'x');
  UPDATE app.slots SET code = 'c1' WHERE id = 2;
  UPDATE app.events SET title = 'moved on' WHERE id = 9001;
  UPDATE app.slots SET code = 'c2' WHERE id = 1;
  COMMIT;
  -- Key moves amid updates of the same table.
  UPDATE app.events SET title = 'before move' WHERE id = 5;
  UPDATE app.events SET id = 100005 WHERE id = 5;
  UPDATE app.events SET title = 'after move' WHERE id = 100005;
  UPDATE app.lines SET line_no = 9 WHERE order_id = 7 AND line_no = 3;
  -- Identity ALWAYS outside the key, renewed by the source.
  UPDATE app.tickets SET no = DEFAULT, state = 'renumbered' WHERE id = 3;
  INSERT INTO app.tickets (id, state) VALUES (31, 'new');
  DELETE FROM app.tickets WHERE id = 4;
  INSERT INTO app.tickets (id, state) VALUES (4, 'reborn');
  UPDATE app.keyless SET w = w || '!' WHERE v <= 3;
  DELETE FROM app.keyless WHERE v = 5;
  TRUNCATE app.lines;
  INSERT INTO app.lines SELECT o, 1, o, 'after truncate' FROM generate_series(1, 50) o;
  UPDATE app.lines SET note = 'x' WHERE order_id = 10;
`;

describe('apply: merged statements converge on the source', () => {
  it('inserts, deletes and re-inserts of the same keys, mixed column sets, interleaved tables: one call and small calls', async () => {
    for (const chunk of [100_000, 7]) {
      const { urls, tables, slot } = await setup(`fold${chunk}`);
      await query(urls.sourceUrl, WORKLOAD);
      const changes = await changesOf(urls.sourceUrl, slot);
      expect(changes.length).toBeGreaterThan(4000);
      const reported = await applyAll(urls, tables, changes, chunk);
      expect(reported).toEqual([]);
      await expectSame(urls, ORDER);
    }
  });

  it('a replay over rows the target already holds (the COPY fast path fails and the upsert runs)', async () => {
    const { urls, tables, slot } = await setup('replay');
    await query(urls.sourceUrl, `
      INSERT INTO app.events SELECT g, g, 'n' || g, 'nb' || g FROM generate_series(1001, 2000) g;
      INSERT INTO app.events SELECT g, g, 'm' || g, 'mb' || g FROM generate_series(2001, 2300) g;
      UPDATE app.events SET a = -1 WHERE id BETWEEN 2001 AND 2010`);
    const changes = await changesOf(urls.sourceUrl, slot);
    // The target already has some of those keys, with other values (a later snapshot chunk, or a first attempt).
    await query(urls.targetUrl, `INSERT INTO app.events SELECT g, 0, 'stale', 'stale' FROM generate_series(1990, 2100) g`);
    await applyAll(urls, tables, changes, 1000);
    await expectSame(urls, ORDER);
    // And the whole stream again, over a target that holds all of it.
    await applyAll(urls, tables, changes, 1000);
    await expectSame(urls, ORDER);
  });

  it('an update of a row the target lacks: complete rows are inserted, partial ones reported (and fetched)', async () => {
    const { urls, tables, slot } = await setup('missing');
    await query(urls.targetUrl, `DELETE FROM app.events WHERE id IN (2, 3, 4, 6)`);
    // Even rows have TOASTed bodies: an update of their title leaves the body out of the change.
    await query(urls.sourceUrl, `UPDATE app.events SET title = 'changed' WHERE id BETWEEN 1 AND 8`);
    const changes = await changesOf(urls.sourceUrl, slot);
    const reported = await applyAll(urls, tables, changes, 1000);
    expect(reported.sort()).toEqual(['app.events {"id":"2"}', 'app.events {"id":"4"}', 'app.events {"id":"6"}']);
    await expectSame(urls, ORDER);
  });

  it('a row the target refuses inside a long run is reported by its own key', async () => {
    const { urls, tables, slot } = await setup('refuse', `ALTER TABLE app.events ADD CONSTRAINT small CHECK (a < 100000)`);
    await query(urls.sourceUrl, `INSERT INTO app.events SELECT g, CASE WHEN g = 1377 THEN 500000 ELSE g END, 't', 'b' FROM generate_series(1001, 2000) g`);
    const changes = await changesOf(urls.sourceUrl, slot);
    await expect(applyAll(urls, tables, changes, 1000)).rejects.toThrow(/refused INSERT of app\.events \(key id=1377/);
  });
});
