/**
 * End to end on real PostgreSQL (source and target): large source transactions streamed while in progress
 * (pgoutput protocol 2 with a 64 kB logical_decoding_work_mem, when the source adapter supports it), interleaved
 * with small ones, a rolled-back savepoint and a rolled-back transaction, applied by the streamer; the target must
 * equal the source, and a restart must not change it (a keyless table shows any replay).
 *
 * The options are passed through a variable: with a source adapter that predates `streamInProgress` the stream is
 * protocol 1 (the same test, without streamed blocks); with one that has it, blocks must have been streamed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PgChangeSource } from '../src/adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../src/adapters/postgres/cdc/change-target.js';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { describeTables } from '../src/adapters/postgres/introspect.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { CDC_CHECKPOINT, runStreamer, streamerConnections } from '../src/core/cdc/streamer.js';
import type { ChangeSource } from '../src/core/ports/change-source.js';
import { waitFor } from './support/ferry-cli.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();
const supportsV2 = readFileSync(join(import.meta.dirname, '..', 'src/adapters/postgres/cdc/change-source.ts'), 'utf8').includes('streamInProgress');

const SCHEMA = `CREATE SCHEMA app;
  CREATE TABLE app.t (id int PRIMARY KEY, v text, pad text);
  CREATE TABLE app.k (id int, v text);
  ALTER TABLE app.k REPLICA IDENTITY FULL`;

async function session(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  c.on('error', () => {});
  await c.connect();
  return c;
}

const fingerprint = async (url: string) =>
  query(url, `SELECT (SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM app.t t) AS t,
                     (SELECT count(*) || ':' || md5(coalesce(string_agg(k::text, ',' ORDER BY id, v), '')) FROM app.k k) AS k`);

describe('streamed in-progress transactions end to end', () => {
  it('large interleaved transactions, a rolled-back savepoint and a rolled-back transaction: the target equals the source, and a restart keeps it', async () => {
    const urls = await freshDatabases(pair(), 'e2e');
    await query(urls.sourceUrl, SCHEMA);
    await query(urls.targetUrl, SCHEMA);
    const c = await session(urls.sourceUrl);
    const tables = await describeTables(c, { include: ['app.*'], exclude: [], rename: {} });
    await c.end();
    const store = new SqliteStateStore(join(await import('node:os').then((o) => o.tmpdir()), `ferry-e2e-${process.pid}-${Date.now()}.db`));
    const v2 = { heartbeatMs: 1000, streamInProgress: true, replicationSettings: { logical_decoding_work_mem: '64kB' } };
    const prep = new PgChangeSource({ url: urls.sourceUrl }, v2);
    const startPoint = await prep.prepare('e2e', tables, { resuming: false });
    await prep.releaseSnapshot();
    await prep.close();
    await store.putCheckpoint('e2e', CDC_CHECKPOINT, startPoint.position);

    let streamedBlocks = 0;
    const run = () => {
      const pgSource = new PgChangeSource({ url: urls.sourceUrl }, v2);
      const source = new Proxy(pgSource, {
        get(t, p) {
          if (p === 'stream') {
            return (...a: Parameters<ChangeSource['stream']>) =>
              t.stream(a[0], a[1], a[2], async (events) => {
                streamedBlocks += events.filter((e) => e.kind === 'stream-start').length;
                await a[3](events);
              }, a[4]);
          }
          const v = Reflect.get(t, p);
          return typeof v === 'function' ? v.bind(t) : v;
        },
      }) as ChangeSource;
      const target = new PgChangeTarget({ url: urls.targetUrl }, { connections: streamerConnections({}) });
      const stop = new AbortController();
      const done = runStreamer({ source, target, store }, { flow: 'e2e', tables, batchMs: 200, signal: stop.signal }).finally(async () => {
        await target.close();
        await pgSource.close();
      });
      return { stop, done };
    };

    let current = run();
    const a = await session(urls.sourceUrl);
    const b = await session(urls.sourceUrl);
    const x = await session(urls.sourceUrl);
    const pad = `repeat(md5(g::text), 4)`;
    // A: large, with a savepoint rolled back in the middle; B: large, interleaved with A; X: large, rolled back.
    await a.query('BEGIN');
    await a.query(`INSERT INTO app.t SELECT g, 'a', ${pad} FROM generate_series(1, 3000) g`);
    await a.query(`INSERT INTO app.k SELECT g, 'a' FROM generate_series(1, 500) g`);
    await b.query('BEGIN');
    await b.query(`INSERT INTO app.t SELECT g, 'b', ${pad} FROM generate_series(100001, 103000) g`);
    await a.query('SAVEPOINT s1');
    await a.query(`INSERT INTO app.t SELECT g, 'gone', ${pad} FROM generate_series(5001, 8000) g`);
    await a.query('ROLLBACK TO SAVEPOINT s1');
    await x.query('BEGIN');
    await x.query(`INSERT INTO app.t SELECT g, 'x', ${pad} FROM generate_series(200001, 203000) g`);
    await query(urls.sourceUrl, `INSERT INTO app.t VALUES (900001, 'small', 'p'); INSERT INTO app.k VALUES (900001, 'small')`);
    // The claim the acknowledgements rely on: confirming a later ordinary commit while streamed transactions are
    // open is safe, because the source resends those from their first block. Wait until that commit is confirmed,
    // stop (the open streamed batches roll back), and resume from the new checkpoint while A, B and X go on.
    await waitFor('the small transaction applied', async () => (await query(urls.targetUrl, `SELECT 1 FROM app.t WHERE id = 900001`)).length > 0, 60_000);
    await waitFor('its position confirmed', async () => (await store.getCheckpoint('e2e', CDC_CHECKPOINT)) !== startPoint.position, 60_000);
    const blocksBefore = streamedBlocks;
    current.stop.abort();
    await current.done;
    current = run();
    await b.query(`UPDATE app.t SET v = 'b2' WHERE id BETWEEN 100001 AND 100500`);
    await a.query(`UPDATE app.t SET v = 'a2' WHERE id <= 1000`);
    await x.query('ROLLBACK');
    await b.query('COMMIT');
    await a.query(`DELETE FROM app.t WHERE id BETWEEN 2001 AND 2100`);
    await a.query('COMMIT');
    await query(urls.sourceUrl, `INSERT INTO app.t VALUES (900002, 'after', 'p')`);
    await Promise.all([a.end(), b.end(), x.end()]);

    const want = (await fingerprint(urls.sourceUrl))[0];
    await waitFor('target equals source', async () => JSON.stringify((await fingerprint(urls.targetUrl))[0]) === JSON.stringify(want), 90_000);
    current.stop.abort();
    await current.done;
    console.log(`streamed blocks: ${blocksBefore} before the restart, ${streamedBlocks} in all`);
    if (supportsV2) expect(blocksBefore).toBeGreaterThan(0);
    else console.log('source adapter without streamInProgress: protocol 1 only (no streamed blocks)');

    // A restart from the checkpoint at the slot's start: nothing changes (the keyless table would show a replay).
    await store.putCheckpoint('e2e', CDC_CHECKPOINT, startPoint.position);
    const again = run();
    await query(urls.sourceUrl, `INSERT INTO app.t VALUES (900003, 'last', 'p')`);
    const want2 = (await fingerprint(urls.sourceUrl))[0];
    await waitFor('target equals source after a restart', async () => JSON.stringify((await fingerprint(urls.targetUrl))[0]) === JSON.stringify(want2), 90_000);
    again.stop.abort();
    await again.done;
    await new PgChangeSource({ url: urls.sourceUrl }).cleanup('e2e').catch(() => {});
  }, 240_000);
});
