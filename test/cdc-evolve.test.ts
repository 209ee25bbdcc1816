/**
 * Schema changes, partitions and new tables while streaming, on real PostgreSQL and real WAL: the hooks
 * (src/adapters/postgres/cdc/stream-hooks.ts) are fed a slot's pgoutput messages in stream order inside one target
 * batch (test/support/pgoutput-peek.ts drives them as the streamer's contract says), then both sides are compared
 * whole: columns, row count and md5 of the ordered rows.
 */
import { describe, expect, it } from 'vitest';
import { PgChangeTarget } from '../src/adapters/postgres/cdc/change-target.js';
import { ensurePublication } from '../src/adapters/postgres/cdc/slot.js';
import { publicationName, slotName } from '../src/adapters/postgres/cdc/names.js';
import { resyncRows } from '../src/adapters/postgres/cdc/partitions.js';
import { PgStreamParts } from '../src/adapters/postgres/cdc/stream-hooks.js';
import { describeTables } from '../src/adapters/postgres/introspect.js';
import { createTables } from '../src/adapters/postgres/schema-target.js';
import type { TableSchema } from '../src/core/model.js';
import type { Selection } from '../src/core/ports/source.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { drive } from './support/pgoutput-peek.js';
import { withClient } from './support/apply-harness.js';

const pair = usePgPair();

/** Plan, create and copy the selected tables, then create the publication (leaves) and the slot: a flow at "streaming". */
async function startFlow(urls: { sourceUrl: string; targetUrl: string }, flow: string, selection: Selection) {
  const tables = await withClient(urls.sourceUrl, (c) => describeTables(c, selection));
  // Streamed into at once, without a snapshot's finalize: the tables need their keys now.
  await withClient(urls.targetUrl, (c) => createTables(c, tables, { primaryKeys: true }));
  await withClient(urls.sourceUrl, async (s) => {
    await ensurePublication(s, flow, tables, { publishLeaves: true });
    await s.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slotName(flow)]);
    await withClient(urls.targetUrl, async (t) => {
      for (const table of tables) await resyncRows(s, t, table.source, table.target, table);
    });
  });
  const warnings: string[] = [];
  const persisted: TableSchema[] = [];
  const parts = new PgStreamParts({
    flow,
    source: { url: urls.sourceUrl },
    selection,
    tables,
    warn: (m) => warnings.push(m),
    onTables: (t) => persisted.push(...t),
  });
  await parts.start();
  const target = new PgChangeTarget({ url: urls.targetUrl }, { connections: 1 });
  await target.appliedPosition(flow); // creates _ferry.cdc_position, as the streamer's start does
  const step = (crash = false, hooks = parts.hooks) =>
    drive({ url: urls.sourceUrl, slot: slotName(flow), publication: publicationName(flow), flow, hooks, target, tables, crash });
  /** A new session after a crash: hooks built from the tables the flow recorded (what onTables persisted). */
  const restart = async () => {
    const recorded = new Map(tables.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
    for (const t of persisted) recorded.set(`${t.source.schema}.${t.source.name}`, t);
    const again = new PgStreamParts({ flow, source: { url: urls.sourceUrl }, selection, tables: [...recorded.values()], warn: (m) => warnings.push(m) });
    await again.start();
    return again;
  };
  return { tables, parts, target, step, restart, warnings, persisted, close: async () => { await parts.close(); await target.close(); } };
}

/** Column names and types, then count and md5 of the rows ordered by the key: equal means identical tables. */
async function fingerprint(url: string, table: string, order: string) {
  const [schema, name] = table.split('.');
  const cols = await query(url, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) c
    FROM pg_attribute WHERE attrelid = '${schema}.${name}'::regclass AND attnum > 0 AND NOT attisdropped`);
  const rows = await query(url, `SELECT count(*) n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${order}), '')) h FROM ${table} t`);
  return { columns: cols[0]!.c, ...rows[0] };
}

describe('schema changes while streaming', () => {
  it('adds, renames and drops columns before the rows that carry them; a type change pauses that table only', async () => {
    const urls = await freshDatabases(pair(), 'evcols');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id int PRIMARY KEY, note text, total numeric(10,2));
      CREATE TABLE app.other (id int PRIMARY KEY, v text);
      INSERT INTO app.orders SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 200) g;
      INSERT INTO app.other SELECT g, 'v' || g FROM generate_series(1, 50) g;`);
    const flow = await startFlow(urls, 'evcols', { include: ['app.*'], exclude: [], rename: {} });
    try {
      await query(urls.sourceUrl, `
        INSERT INTO app.orders VALUES (201, 'before', 1);
        ALTER TABLE app.orders ADD COLUMN status text NOT NULL DEFAULT 'new';
        INSERT INTO app.orders VALUES (202, 'with status', 2, 'paid');
        UPDATE app.orders SET status = 'sent' WHERE id % 10 = 0;
        ALTER TABLE app.orders RENAME COLUMN note TO remark;
        UPDATE app.orders SET remark = 'renamed ' || id WHERE id % 7 = 0;
        INSERT INTO app.orders VALUES (203, 'after rename', 3, 'x');
        ALTER TABLE app.orders DROP COLUMN total;
        INSERT INTO app.orders VALUES (204, 'after drop', 'y');
        DELETE FROM app.orders WHERE id % 11 = 0;
        INSERT INTO app.other VALUES (51, 'before type change');
        ALTER TABLE app.other ALTER COLUMN v TYPE varchar(40);
        INSERT INTO app.other VALUES (52, 'after type change');
        INSERT INTO app.orders VALUES (205, 'still streaming', 'z');`);
      const { paused } = await flow.step();

      // orders converged, columns included (type, NOT NULL, renamed, dropped), while other was paused.
      expect(await fingerprint(urls.targetUrl, 'app.orders', 'id')).toEqual(await fingerprint(urls.sourceUrl, 'app.orders', 'id'));
      expect((await fingerprint(urls.targetUrl, 'app.orders', 'id')).columns).toBe('id integer not null, remark text, status text not null');
      const reason = paused.get('app.other');
      expect(reason).toMatch(/^app\.other: column v changed type from text to character varying\(40\); .*other tables keep streaming.*ALTER TABLE … TYPE on the target/);
      expect(paused.has('app.orders')).toBe(false);
      // other kept what it had up to the type change, and nothing after.
      expect((await query(urls.targetUrl, `SELECT max(id) m FROM app.other`))[0]!.m).toBe('51');
      expect(flow.warnings.join('\n')).toMatch(/app\.orders: replayed on the target ADD COLUMN status text/);
      expect(flow.persisted.at(-1)!.columns.map((c) => c.name)).toEqual(['id', 'remark', 'status']);
      expect(flow.parts.pausedTables().map((p) => p.table)).toEqual(['app.other']);
    } finally {
      await flow.close();
    }
  });
});

describe('a crash after the hooks ran and before the target committed', () => {
  it('replays the column steps and the new table from what the target committed, not from what was recorded', async () => {
    const urls = await freshDatabases(pair(), 'evcrash');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.orders (id int PRIMARY KEY, note text);
      INSERT INTO app.orders SELECT g, 'n' || g FROM generate_series(1, 100) g;`);
    const flow = await startFlow(urls, 'evcrash', { include: ['app.*'], exclude: [], rename: {} });
    try {
      // A committed round: the rename is applied and the tracked columns are saved with it.
      await query(urls.sourceUrl, `ALTER TABLE app.orders RENAME COLUMN note TO remark; UPDATE app.orders SET remark = 'r' WHERE id % 4 = 0;`);
      await flow.step();
      // A round that crashes: the hooks ran (and persisted their schemas, ahead of the target), the batch rolled back.
      await query(urls.sourceUrl, `
        ALTER TABLE app.orders ADD COLUMN status text NOT NULL DEFAULT 'new';
        INSERT INTO app.orders VALUES (101, 'x', 'paid');
        ALTER TABLE app.orders DROP COLUMN remark;
        INSERT INTO app.orders VALUES (102, 'sent');
        CREATE TABLE app.fresh (id int PRIMARY KEY, v text);
        INSERT INTO app.fresh SELECT g, 'f' FROM generate_series(1, 30) g;`);
      await flow.parts.poll();
      await flow.step(true);
      expect(flow.persisted.at(-2)!.columns.map((c) => c.name)).toEqual(['id', 'status']);
      expect((await fingerprint(urls.targetUrl, 'app.orders', 'id')).columns).toBe('id integer not null, remark text');
      expect((await query(urls.targetUrl, `SELECT to_regclass('app.fresh') t`))[0]!.t).toBeNull();

      const again = await flow.restart();
      try {
        const { paused } = await flow.step(false, again.hooks);
        expect(paused.size).toBe(0);
      } finally {
        await again.close();
      }
      expect(await fingerprint(urls.targetUrl, 'app.orders', 'id')).toEqual(await fingerprint(urls.sourceUrl, 'app.orders', 'id'));
      expect(await fingerprint(urls.targetUrl, 'app.fresh', 'id')).toEqual(await fingerprint(urls.sourceUrl, 'app.fresh', 'id'));
    } finally {
      await flow.close();
    }
  });
});

describe('partitions while streaming', () => {
  it('converge through a leaf TRUNCATE, a new partition, ATTACH and DETACH', async () => {
    const urls = await freshDatabases(pair(), 'evparts');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.m (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE app.m1 PARTITION OF app.m FOR VALUES FROM (0) TO (100);
      CREATE TABLE app.m2 PARTITION OF app.m FOR VALUES FROM (100) TO (200);
      INSERT INTO app.m SELECT g, g % 200, 'v' || g FROM generate_series(1, 1000) g;`);
    const flow = await startFlow(urls, 'evparts', { include: ['app.*'], exclude: [], rename: {} });
    try {
      await query(urls.sourceUrl, `
        INSERT INTO app.m SELECT g, g % 200, 'w' || g FROM generate_series(1001, 1100) g;
        UPDATE app.m SET at = at + 100 WHERE id BETWEEN 1001 AND 1010 AND at < 100;  -- moves across partitions
        TRUNCATE app.m1;
        INSERT INTO app.m VALUES (5000, 5, 'after truncate');
        CREATE TABLE app.m3 PARTITION OF app.m FOR VALUES FROM (200) TO (300);
        INSERT INTO app.m SELECT g, 200 + g % 100, 'm3' FROM generate_series(2000, 2049) g;
        CREATE TABLE app.m4 (id int, at int, v text, PRIMARY KEY (id, at));
        INSERT INTO app.m4 SELECT g, 300 + g % 100, 'pre-attach' FROM generate_series(3000, 3099) g;
        ALTER TABLE app.m ATTACH PARTITION app.m4 FOR VALUES FROM (300) TO (400);`);
      const markers = await flow.parts.poll();
      expect(markers.map((m) => m.kind + ' ' + ('leaf' in m ? m.leaf.name : ''))).toEqual(['attached m3', 'attached m4']);
      await query(urls.sourceUrl, `
        UPDATE app.m SET v = 'post-attach' WHERE id BETWEEN 3000 AND 3009;
        ALTER TABLE app.m DETACH PARTITION app.m2;
        UPDATE app.m2 SET v = 'detached' WHERE id BETWEEN 100 AND 120;`);
      const second = await flow.parts.poll();
      // The detached partition is a table of its own now, and the selection (app.*) matches it.
      expect(second.map((m) => m.kind)).toEqual(['detached', 'table-added']);
      const { paused } = await flow.step();
      expect(paused.size).toBe(0);

      expect(await fingerprint(urls.targetUrl, 'app.m', 'id, at')).toEqual(await fingerprint(urls.sourceUrl, 'app.m', 'id, at'));
      for (const leaf of ['app.m1', 'app.m3', 'app.m4']) {
        expect(await fingerprint(urls.targetUrl, leaf, 'id, at')).toEqual(await fingerprint(urls.sourceUrl, leaf, 'id, at'));
      }
      // m2 left the partitioned table on the target too, and streams as a table of its own.
      const parent = await query(urls.targetUrl, `SELECT count(*) n FROM pg_inherits WHERE inhrelid = 'app.m2'::regclass`);
      expect(parent[0]!.n).toBe('0');
      expect(await fingerprint(urls.targetUrl, 'app.m2', 'id, at')).toEqual(await fingerprint(urls.sourceUrl, 'app.m2', 'id, at'));
      // Its later changes stream (the next batch), and the partitioned table's keep streaming too.
      await query(urls.sourceUrl, `UPDATE app.m2 SET v = 'streamed as a table' WHERE id BETWEEN 110 AND 130;
        INSERT INTO app.m VALUES (6000, 250, 'later'); DELETE FROM app.m WHERE id = 3001;`);
      const later = await flow.step();
      expect(later.applied.get('app.m2')).toBe(21);
      expect((await query(urls.targetUrl, `SELECT count(*) n FROM app.m2 WHERE v = 'streamed as a table'`))[0]!.n).toBe('21');
      expect(await fingerprint(urls.targetUrl, 'app.m', 'id, at')).toEqual(await fingerprint(urls.sourceUrl, 'app.m', 'id, at'));
      expect(flow.warnings.join('\n')).toMatch(/app\.m4 joined app\.m on the source: app\.m4 resynced on the target \(100 rows\)/);
    } finally {
      await flow.close();
    }
  });
});

describe('tables created while streaming', () => {
  it('a new table that matches include is published, created, copied and streamed; a keyless one is paused', async () => {
    const urls = await freshDatabases(pair(), 'evnew');
    await query(urls.sourceUrl, `
      CREATE SCHEMA app;
      CREATE TABLE app.base (id int PRIMARY KEY, v text);
      CREATE TABLE app.skip_me (id int PRIMARY KEY);
      INSERT INTO app.base SELECT g, 'b' FROM generate_series(1, 10) g;`);
    const flow = await startFlow(urls, 'evnew', { include: ['app.*'], exclude: ['app.skip_*'], rename: {} });
    try {
      await query(urls.sourceUrl, `
        CREATE TABLE app.fresh (id bigint PRIMARY KEY, v text NOT NULL, at timestamptz DEFAULT now());
        CREATE INDEX fresh_v ON app.fresh (v);
        INSERT INTO app.fresh (id, v) SELECT g, 'f' || g FROM generate_series(1, 500) g;
        CREATE TABLE app.loose (v text);
        CREATE TABLE app.skip_too (id int PRIMARY KEY);
        CREATE TABLE other_schema_t (id int PRIMARY KEY);`);
      const markers = await flow.parts.poll();
      expect(markers.map((m) => m.kind === 'table-added' && m.table.name)).toEqual(['fresh', 'loose']);
      const published = await query(urls.sourceUrl, `SELECT tablename t FROM pg_publication_tables WHERE pubname = '${publicationName('evnew')}' ORDER BY 1`);
      expect(published.map((r) => r.t)).toEqual(['base', 'fresh', 'loose']);
      // A second poll announces nothing again.
      expect(await flow.parts.poll()).toEqual([]);
      await query(urls.sourceUrl, `
        UPDATE app.fresh SET v = 'changed' WHERE id % 5 = 0;
        DELETE FROM app.fresh WHERE id > 490;
        INSERT INTO app.fresh (id, v) VALUES (1000, 'late');
        INSERT INTO app.loose VALUES ('x');
        INSERT INTO app.base VALUES (11, 'b');`);
      const { paused } = await flow.step();

      expect(await fingerprint(urls.targetUrl, 'app.fresh', 'id')).toEqual(await fingerprint(urls.sourceUrl, 'app.fresh', 'id'));
      const idx = await query(urls.targetUrl, `SELECT count(*) n FROM pg_indexes WHERE schemaname = 'app' AND indexname = 'fresh_v'`);
      expect(idx[0]!.n).toBe('1');
      expect(paused.get('app.loose')).toMatch(/app\.loose: created on the source while streaming, without a primary key/);
      expect(await fingerprint(urls.targetUrl, 'app.base', 'id')).toEqual(await fingerprint(urls.sourceUrl, 'app.base', 'id'));
      expect((await query(urls.targetUrl, `SELECT to_regclass('app.skip_too') t`))[0]!.t).toBeNull();
      expect(flow.persisted.map((t) => t.source.name)).toContain('fresh');
    } finally {
      await flow.close();
    }
  });
});
