/**
 * The snapshot loads tables without their primary key and builds it at finalize: the load still leaves exactly one
 * copy of each row when a chunk fails and is retried, when jobs are delivered twice at once, and when stray rows
 * sit in a retried chunk's range; the key and the unique indexes are there at finalize, before CDC applies anything.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../src/config/load.js';
import { tableKey, type Job, type JobRecord, type TableSchema } from '../src/core/model.js';
import type { ChangeTarget } from '../src/core/ports/change-target.js';
import type { SnapshotSource } from '../src/core/ports/source.js';
import { silentProgress } from '../src/core/progress.js';
import { finalizeSnapshot } from '../src/core/snapshot/finalize.js';
import { planSnapshot } from '../src/core/snapshot/plan.js';
import { processJob } from '../src/core/snapshot/process-job.js';
import { compareTables } from '../src/demo/compare.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.accounts (id bigint CONSTRAINT accounts_key PRIMARY KEY, email text NOT NULL UNIQUE, n int);
  CREATE UNIQUE INDEX accounts_n_idx ON app.accounts (n);
  CREATE TABLE app.lines (order_id int, line_no int, qty int, PRIMARY KEY (order_id, line_no));
  INSERT INTO app.accounts SELECT g, 'user' || g || '@example.com', g FROM generate_series(1, 12000) g;
  INSERT INTO app.lines SELECT o, l, o + l FROM generate_series(1, 2000) o, generate_series(1, 3) l;
  ANALYZE;
`;

/** Primary keys and unique indexes on the target's app tables, as `table:index` (`!` marks the primary key). */
async function keys(url: string): Promise<string[]> {
  const rows = await query<{ k: string }>(
    url,
    `SELECT t.relname || ':' || i.relname || CASE WHEN x.indisprimary THEN '!' ELSE '' END k
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
     JOIN pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = 'app' AND x.indisunique ORDER BY 1`,
  );
  return rows.map((r) => r.k);
}

const FINAL_KEYS = ['accounts:accounts_email_key', 'accounts:accounts_key!', 'accounts:accounts_n_idx', 'lines:lines_pkey!'];

async function counts(url: string) {
  const [r] = await query(url, `SELECT (SELECT count(*) FROM app.accounts) a, (SELECT count(DISTINCT id) FROM app.accounts) ad,
    (SELECT count(*) FROM app.lines) l`);
  return r;
}

/** A snapshot planned on the pair's databases, with the parts processJob needs. */
async function planned(urls: { sourceUrl: string; targetUrl: string }, flowId: string, wrap?: (s: SnapshotSource) => SnapshotSource) {
  const config = parseConfig({
    name: flowId,
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-state-')), 'state.db') },
  });
  const store = new SqliteStateStore(config.state.path);
  const pgSource = new PgSnapshotSource(config.source, { connections: 8 });
  const source = wrap ? wrap(pgSource) : pgSource;
  const target = new PgSnapshotTarget(config.target, { connections: 8 });
  const { flow, jobs } = await planSnapshot(
    { source, target, store },
    { flow: flowId, selection: { include: ['app.*'], exclude: [], rename: {} }, rowsPerRange: 3000, truncate: false, summary: null },
  );
  const tables = new Map<string, TableSchema>(flow.tables.map((t) => [tableKey(t.source), t]));
  const deps = { source, target, store, progress: silentProgress, tables };
  const opts = { owner: 't', batchRows: 700, deadline: Date.now() + 120_000, maxAttempts: 5, leaseMs: 60_000 };
  const asJob = (j: JobRecord): Job => ({ flow: j.flow, id: j.id, table: j.table, range: j.range, cursor: null, attempt: 0 });
  return {
    flow,
    jobs,
    deps,
    opts,
    asJob,
    finalize: async () => finalizeSnapshot({ source, target, store }, (await store.getFlow(flowId))!),
    close: () => Promise.allSettled([pgSource.close(), target.close(), store.close()]),
  };
}

describe('snapshot with the primary key deferred to finalize', () => {
  it('loads without the key, survives a failed and retried chunk and duplicate deliveries, then builds the key and unique indexes', async () => {
    const urls = await freshDatabases(pair(), 'deferred');
    await query(urls.sourceUrl, SCHEMA);
    // The third chunk read fails half-way through its rows (a source connection lost mid-COPY).
    let reads = 0;
    const p = await planned(urls, 'deferred', (s) => ({
      ...s,
      describe: s.describe.bind(s),
      planRanges: s.planRanges.bind(s),
      nextChunk: s.nextChunk.bind(s),
      sequences: s.sequences.bind(s),
      close: s.close.bind(s),
      async read(table, bounds, accepted) {
        const rs = await s.read(table, bounds, accepted);
        if (++reads !== 3) return rs;
        let seen = 0;
        rs.stream.on('data', (b: Buffer) => {
          seen += b.length;
          if (seen > 8000) rs.stream.destroy(new Error('injected: source connection lost'));
        });
        return rs;
      },
    }));
    try {
      // Created bare: no primary key, no unique index during the load.
      expect(await keys(urls.targetUrl)).toEqual([]);
      const first = p.jobs[0]!;
      const failed = await processJob(p.deps, p.asJob(first), 1, p.opts);
      expect(failed).toMatchObject({ kind: 'retry', error: expect.stringContaining('injected') });
      // Its first two chunks were committed; the retry (second delivery) carries on from the cursor.
      const [{ n }] = (await query(urls.targetUrl, 'SELECT count(*) n FROM app.accounts')) as [{ n: string }];
      expect(Number(n)).toBe(1400);
      expect(await processJob(p.deps, p.asJob(first), 2, p.opts)).toEqual({ kind: 'done' });
      // Every job twice at once, then once more later: skipped or done, never loaded twice.
      const outcomes = await Promise.all(p.jobs.flatMap((j) => [processJob(p.deps, p.asJob(j), 1, p.opts), processJob(p.deps, p.asJob(j), 1, p.opts)]));
      expect(outcomes.every((o) => o.kind === 'done' || o.kind === 'skipped')).toBe(true);
      expect((await Promise.all(p.jobs.map((j) => processJob(p.deps, p.asJob(j), 3, p.opts)))).every((o) => o.kind === 'skipped')).toBe(true);
      expect(await keys(urls.targetUrl)).toEqual([]);
      expect(await counts(urls.targetUrl)).toEqual({ a: '12000', ad: '12000', l: '6000' });

      await p.finalize();
      expect(await keys(urls.targetUrl)).toEqual(FINAL_KEYS);
      for (const d of await compareTables(urls.sourceUrl, urls.targetUrl, 'app')) expect(d, d.table).toMatchObject({ ok: true });
      // Finalize again (a resumed finalize, or the cutover's): the key is kept, not added twice.
      await p.finalize();
      expect(await keys(urls.targetUrl)).toEqual(FINAL_KEYS);
    } finally {
      await p.close();
    }
  });

  it('deletes before a chunk it cannot account for, and a stray copy that slipped past makes finalize fail loudly', async () => {
    const urls = await freshDatabases(pair(), 'stray');
    await query(urls.sourceUrl, SCHEMA);
    const p = await planned(urls, 'stray');
    try {
      const [a, b] = p.jobs.filter((j) => j.table === 'app.accounts') as [JobRecord, JobRecord];
      // Rows already inside both ranges that no chunk of theirs wrote (as if written by something else).
      await query(urls.targetUrl, `INSERT INTO app.accounts SELECT g, 'stray' || g, -g FROM generate_series(1, 50) g;
        INSERT INTO app.accounts SELECT g, 'stray' || g, -g FROM generate_series(6001, 6050) g`);
      expect(JSON.stringify(a.range)).toContain('"lower":null');
      // A retried delivery (receiveCount 2) deletes its first chunk's range: one copy, the source's.
      expect(await processJob(p.deps, p.asJob(a), 2, p.opts)).toEqual({ kind: 'done' });
      const [one] = await query(urls.targetUrl, `SELECT count(*) n, count(*) FILTER (WHERE email LIKE 'stray%') s FROM app.accounts WHERE id <= 50`);
      expect(one).toEqual({ n: '50', s: '0' });
      // A first delivery trusts the marker (the target was checked empty at planning): the stray rows stay…
      expect(await processJob(p.deps, p.asJob(b), 1, p.opts)).toEqual({ kind: 'done' });
      for (const j of p.jobs.filter((x) => x.id !== a.id && x.id !== b.id)) await processJob(p.deps, p.asJob(j), 1, p.opts);
      // …and the primary key build refuses the duplicates instead of hiding them.
      await expect(p.finalize()).rejects.toThrow(/primary key of app\.accounts cannot be built.*duplicated/s);
    } finally {
      await p.close();
    }
  });

  it('has the primary key and unique indexes on the target before CDC applies the first change', async () => {
    const urls = await freshDatabases(pair(), 'cdcpk');
    await query(urls.sourceUrl, SCHEMA);
    const config = parseConfig({
      name: 'cdcpk',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['app.*'],
      mode: 'snapshot+cdc',
      rowsPerRange: 3000,
      batchRows: 1000,
      workers: 2,
      cdc: { batchMs: 100, heartbeatSeconds: 1 },
      state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-state-')), 'state.db') },
    });
    const stop = new AbortController();
    const atFirstApply: string[][] = [];
    const wrap = (applier: ChangeTarget): ChangeTarget => ({
      capabilities: applier.capabilities,
      appliedPosition: (f) => applier.appliedPosition(f),
      close: () => applier.close(),
      async begin(f, tables) {
        if (atFirstApply.length === 0) atFirstApply.push(await keys(urls.targetUrl));
        return applier.begin(f, tables);
      },
    });
    const running = runFlow({ config, progress: silentProgress, signal: stop.signal, instrument: ({ changes, applier }) => ({ changes, applier: wrap(applier) }) });
    try {
      // Changes made after finalize built the keys (so after the slot was created) reach the target through CDC, as
      // upserts and updates by key, which need the key's unique index.
      for (let i = 0; i < 600 && (await keys(urls.targetUrl)).length < FINAL_KEYS.length; i++) await new Promise((r) => setTimeout(r, 100));
      await query(urls.sourceUrl, `INSERT INTO app.accounts VALUES (20001, 'late@example.com', 20001);
        UPDATE app.accounts SET n = -n WHERE id <= 10; UPDATE app.lines SET qty = 0 WHERE order_id = 1`);
      let applied = false;
      for (let i = 0; i < 600 && !applied; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const [r] = await query(urls.targetUrl, `SELECT (SELECT count(*) FROM app.accounts WHERE id = 20001 OR n < 0) a, (SELECT count(*) FROM app.lines WHERE qty = 0) l`);
        applied = r!.a === '11' && r!.l === '3';
      }
      expect(applied).toBe(true);
    } finally {
      stop.abort();
      await running;
    }
    expect(atFirstApply[0]).toEqual(FINAL_KEYS);
    for (const d of await compareTables(urls.sourceUrl, urls.targetUrl, 'app')) expect(d, d.table).toMatchObject({ ok: true });
  });
});
