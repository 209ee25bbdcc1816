/**
 * End to end through the local runtime on real PostgreSQL: a full copy, duplicate deliveries, a job that runs out of
 * time budget and continues from its cursor, and a run killed with SIGKILL and resumed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../src/config/load.js';
import { tableKey, type Job, type TableSchema } from '../src/core/model.js';
import { silentProgress } from '../src/core/progress.js';
import { planSnapshot } from '../src/core/snapshot/plan.js';
import { processJob } from '../src/core/snapshot/process-job.js';
import { compareTables } from '../src/demo/compare.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.accounts (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, balance numeric(20,2), created timestamptz);
  CREATE TABLE app.tags (code text PRIMARY KEY, label text);
  CREATE TABLE app.lines (order_id int, line_no int, qty int CHECK (qty > 0), PRIMARY KEY (order_id, line_no));
  CREATE TABLE app.log (at timestamp, message text);
  CREATE INDEX log_at ON app.log (at);
  INSERT INTO app.accounts (email, balance, created)
    SELECT 'user' || g || '@example.com', g * 1.25, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
    FROM generate_series(1, 20000) g;
  INSERT INTO app.tags SELECT 'tag-' || md5(g::text), 'label ' || g FROM generate_series(1, 5000) g;
  INSERT INTO app.lines SELECT o, l, 1 + (o + l) % 7 FROM generate_series(1, 3000) o, generate_series(1, 4) l;
  INSERT INTO app.log SELECT timestamp '2024-06-01' + g * interval '1 second', repeat('x', g % 50) FROM generate_series(1, 15000) g;
  ANALYZE;
`;

function configFor(urls: { sourceUrl: string; targetUrl: string }, extra: Record<string, unknown> = {}) {
  return parseConfig({
    name: 'test',
    source: { url: urls.sourceUrl },
    target: { url: urls.targetUrl },
    include: ['app.*'],
    rowsPerRange: 4000,
    batchRows: 1500,
    workers: 3,
    state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-state-')), 'state.db') },
    ...extra,
  });
}

async function expectIdentical(urls: { sourceUrl: string; targetUrl: string }) {
  const diffs = await compareTables(urls.sourceUrl, urls.targetUrl, 'app');
  expect(diffs.length).toBe(4);
  for (const d of diffs) expect(d, d.table).toMatchObject({ ok: true });
}

describe('local snapshot', () => {
  it('copies every table by ranges and finalizes indexes, constraints and sequences', async () => {
    const urls = await freshDatabases(pair(), 'full');
    await query(urls.sourceUrl, SCHEMA);
    const config = configFor(urls);
    const result = await runFlow({ config, progress: silentProgress });
    expect(result.interrupted).toBe(false);
    await expectIdentical(urls);

    const store = new SqliteStateStore(config.state.path);
    const jobs = await store.listJobs('test');
    await store.close();
    // Several ranges per big table, and every job done.
    expect(jobs.filter((j) => j.table === 'app.accounts').length).toBeGreaterThan(2);
    expect(jobs.filter((j) => j.table === 'app.log').length).toBeGreaterThan(1);
    expect(jobs.every((j) => j.status === 'done')).toBe(true);

    const indexes = await query(urls.targetUrl, `SELECT indexname FROM pg_indexes WHERE schemaname = 'app' ORDER BY 1`);
    expect(indexes.map((r) => r.indexname)).toEqual(expect.arrayContaining(['accounts_email_key', 'log_at']));
    await query(urls.targetUrl, `INSERT INTO app.accounts (email) VALUES ('new@example.com')`);
    const [next] = await query(urls.targetUrl, `SELECT id FROM app.accounts WHERE email = 'new@example.com'`);
    expect(Number(next!.id)).toBe(20001);
  });

  it('loads each row once when jobs are delivered twice, at once and again later', async () => {
    const urls = await freshDatabases(pair(), 'dup');
    await query(urls.sourceUrl, SCHEMA);
    const config = configFor(urls);
    const store = new SqliteStateStore(config.state.path);
    const source = new PgSnapshotSource(config.source, { connections: 8 });
    const target = new PgSnapshotTarget(config.target, { connections: 8 });
    try {
      const { flow, jobs } = await planSnapshot(
        { source, target, store },
        { flow: 'dup', selection: { include: ['app.*'], exclude: [], rename: {} }, rowsPerRange: 4000, truncate: false, summary: null },
      );
      const tables = new Map<string, TableSchema>(flow.tables.map((t) => [tableKey(t.source), t]));
      const deps = { source, target, store, progress: silentProgress, tables };
      const opts = { owner: 't', batchRows: 1500, deadline: Date.now() + 60_000, maxAttempts: 3, leaseMs: 60_000 };
      const asJob = (j: (typeof jobs)[number]): Job => ({ flow: j.flow, id: j.id, table: j.table, range: j.range, cursor: null, attempt: 0 });
      // Two concurrent deliveries of every job…
      const outcomes = await Promise.all(jobs.flatMap((j) => [processJob(deps, asJob(j), 1, opts), processJob(deps, asJob(j), 1, opts)]));
      expect(outcomes.every((o) => o.kind === 'done' || o.kind === 'skipped')).toBe(true);
      // …and a third, late one.
      const late = await Promise.all(jobs.map((j) => processJob(deps, asJob(j), 2, opts)));
      expect(late.every((o) => o.kind === 'skipped')).toBe(true);
      const counts = await query(urls.targetUrl, `SELECT (SELECT count(*) FROM app.accounts) a, (SELECT count(*) FROM app.log) l, (SELECT count(*) FROM app.lines) n`);
      expect(counts[0]).toEqual({ a: '20000', l: '15000', n: '12000' });
      await expectIdentical(urls);
    } finally {
      await Promise.allSettled([source.close(), target.close(), store.close()]);
    }
  });

  it('yields at the time budget with a cursor and continues from it, not from the start', async () => {
    const urls = await freshDatabases(pair(), 'budget');
    await query(urls.sourceUrl, SCHEMA);
    const config = configFor(urls);
    const store = new SqliteStateStore(config.state.path);
    const source = new PgSnapshotSource(config.source, { connections: 4 });
    const target = new PgSnapshotTarget(config.target, { connections: 4 });
    try {
      const { flow, jobs } = await planSnapshot(
        { source, target, store },
        { flow: 'budget', selection: { include: ['app.accounts'], exclude: [], rename: {} }, rowsPerRange: 1e9, truncate: false, summary: null },
      );
      expect(jobs).toHaveLength(1);
      const tables = new Map<string, TableSchema>(flow.tables.map((t) => [tableKey(t.source), t]));
      const deps = { source, target, store, progress: silentProgress, tables };
      let job: Job = { flow: 'budget', id: jobs[0]!.id, table: 'app.accounts', range: jobs[0]!.range, cursor: null, attempt: 0 };
      const seen: number[] = [];
      for (let i = 0; i < 100; i++) {
        // A budget already spent: exactly one chunk per invocation, like a Lambda near its timeout.
        const outcome = await processJob(deps, job, 1, { owner: 't', batchRows: 6000, deadline: 0, maxAttempts: 3, leaseMs: 60_000 });
        const [{ n }] = (await query(urls.targetUrl, 'SELECT count(*) n FROM app.accounts')) as [{ n: string }];
        seen.push(Number(n));
        if (outcome.kind === 'done') break;
        expect(outcome.kind).toBe('yielded');
        if (outcome.kind === 'yielded') job = outcome.continuation;
      }
      expect(seen).toEqual([6000, 12000, 18000, 20000]);
    } finally {
      await Promise.allSettled([source.close(), target.close(), store.close()]);
    }
  });

  it('resumes after SIGKILL without copying finished ranges again', async () => {
    const urls = await freshDatabases(pair(), 'kill');
    await query(urls.sourceUrl, SCHEMA);
    await query(urls.sourceUrl, `INSERT INTO app.log SELECT now()::timestamp, repeat('y', 200) FROM generate_series(1, 300000); ANALYZE app.log`);
    const dir = mkdtempSync(join(tmpdir(), 'ferry-kill-'));
    const cfgPath = join(dir, 'ferry.json');
    const statePath = join(dir, 'state.db');
    writeFileSync(cfgPath, JSON.stringify({
      name: 'kill', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl }, include: ['app.*'],
      rowsPerRange: 20000, batchRows: 5000, workers: 2, state: { path: statePath },
    }));
    const bin = join(import.meta.dirname, '..', 'bin', 'ferry.js');
    const first = spawn(process.execPath, [bin, 'run', cfgPath], { stdio: 'ignore' });
    // Kill it once a few ranges are done but the copy is not.
    const store = new SqliteStateStore(statePath);
    let doneBefore: { id: string; attempts: number; updatedAt: number }[] = [];
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const jobs = await store.listJobs('kill').catch(() => []);
      doneBefore = jobs.filter((j) => j.status === 'done');
      if (doneBefore.length >= 3 && doneBefore.length < jobs.length - 2) break;
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(doneBefore.length).toBeGreaterThanOrEqual(3);

    const second = spawn(process.execPath, [bin, 'run', cfgPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    second.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((r) => second.once('exit', r));
    expect(code, stderr).toBe(0);
    const after = new Map((await store.listJobs('kill')).map((j) => [j.id, j]));
    await store.close();
    for (const j of doneBefore) {
      expect(after.get(j.id)?.attempts, j.id).toBe(j.attempts);
      expect(after.get(j.id)?.updatedAt, j.id).toBe(j.updatedAt);
    }
    expect([...after.values()].every((j) => j.status === 'done')).toBe(true);
    await expectIdentical(urls);
  });
});
