/**
 * The streamer's executor on a real PostgreSQL target (PgChangeTarget), fed scripted StreamEvents: streamed
 * in-progress transactions (interleaved blocks, subtransaction and transaction aborts), apply lanes
 * (consistency: table), restarts from an older checkpoint, and adaptive commits. The source is a script (the
 * protocol v2 decoder is tested on its own); everything on the target side is real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { compareLsn } from '../src/adapters/postgres/cdc/lsn.js';
import { PgChangeTarget } from '../src/adapters/postgres/cdc/change-target.js';
import { describeTables } from '../src/adapters/postgres/introspect.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { laneOf } from '../src/core/cdc/lane-layout.js';
import { CDC_CHECKPOINT, runStreamer, streamerConnections, type StreamerOptions } from '../src/core/cdc/streamer.js';
import type { TableSchema } from '../src/core/model.js';
import type { ChangeSource, StreamEvent } from '../src/core/ports/change-source.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();
const dir = mkdtempSync(join(tmpdir(), 'ferry-streamed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCHEMA = `CREATE SCHEMA app;
  CREATE TABLE app.t (id int PRIMARY KEY, v text);
  CREATE TABLE app.u (id int PRIMARY KEY, v text);
  CREATE TABLE app.w (id int PRIMARY KEY, v text);
  CREATE TABLE app.k (id int, v text)`; // keyless: a replay would duplicate its rows

/** A source that plays a script, then waits for the stop; records what the streamer acknowledged. */
class ScriptedSource {
  readonly acks: string[] = [];
  constructor(private readonly batches: StreamEvent[][]) {}
  compare(a: unknown, b: unknown) {
    return compareLsn(a as string, b as string);
  }
  async stream(_f: string, _t: TableSchema[], _from: unknown, onEvents: (e: StreamEvent[]) => Promise<void>, signal: AbortSignal) {
    for (const b of this.batches) {
      if (signal.aborted) break;
      await onEvents(b);
    }
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  }
  async acknowledge(p: unknown) {
    this.acks.push(p as string);
  }
  async fetchRows() {
    return [];
  }
}

async function setup(name: string) {
  const urls = await freshDatabases(pair(), name);
  await query(urls.targetUrl, SCHEMA);
  const c = new pg.Client(urls.targetUrl);
  await c.connect();
  const tables = await describeTables(c, { include: ['app.*'], exclude: [], rename: {} });
  await c.end();
  const store = new SqliteStateStore(join(dir, `${name}.db`));
  return { urls, tables, store };
}

type Env = Awaited<ReturnType<typeof setup>>;

/** Run the streamer over the script until `until` is acknowledged, then stop it cleanly. */
async function play(env: Env, script: StreamEvent[][], until: string, opts: Partial<StreamerOptions> = {}, checkpoint = '0/100') {
  await env.store.putCheckpoint('f', CDC_CHECKPOINT, checkpoint);
  const source = new ScriptedSource(script);
  const target = new PgChangeTarget({ url: env.urls.targetUrl }, { connections: streamerConnections(opts) });
  const stop = new AbortController();
  try {
    const run = runStreamer(
      { source: source as unknown as ChangeSource, target, store: env.store },
      { flow: 'f', tables: env.tables, batchMs: 200, signal: stop.signal, ...opts },
    );
    const deadline = Date.now() + 30_000;
    while (!source.acks.some((a) => compareLsn(a, until) >= 0)) {
      if (Date.now() > deadline) throw new Error(`not acknowledged: ${until} (acks: ${source.acks.join(' ')})`);
      await Promise.race([run, new Promise((r) => setTimeout(r, 20))]);
    }
    stop.abort();
    await run;
    return source.acks;
  } finally {
    await target.close();
  }
}

const ins = (table: string, id: number, xid?: string): StreamEvent => ({
  kind: 'change',
  change: { op: 'insert', table: `app.${table}`, row: { id: String(id), v: `v${id}` } },
  ...(xid ? { xid } : {}),
});
const del = (table: string, id: number): StreamEvent => ({ kind: 'change', change: { op: 'delete', table: `app.${table}`, old: { id: String(id), v: `v${id}` } } });
const begin = (position: string): StreamEvent => ({ kind: 'begin', position, time: Date.now() });
const commit = (position: string): StreamEvent => ({ kind: 'commit', position, time: Date.now() });
const start = (xid: string, first = true): StreamEvent => ({ kind: 'stream-start', xid, first });
const stop: StreamEvent = { kind: 'stream-stop' };

async function contents(url: string) {
  const out: Record<string, string> = {};
  for (const t of ['t', 'u', 'w', 'k']) {
    const rows = await query<{ ids: string | null }>(url, `SELECT string_agg(id::text, ',' ORDER BY id) ids FROM app.${t}`);
    out[t] = rows[0]!.ids ?? '';
  }
  return out;
}

const positions = (url: string) => query<{ flow: string; position: string }>(url, `SELECT flow, position FROM _ferry.cdc_position ORDER BY flow`);

/** Two interleaved streamed transactions (one with an aborted subtransaction), an aborted one, ordinary ones between. */
const STREAMED: StreamEvent[][] = [
  [start('700'), ins('t', 1, '700'), ins('t', 2, '701'), stop],
  [begin('0/110'), ins('u', 50), ins('k', 1), commit('0/120')],
  [start('800'), ins('t', 10, '800'), ins('k', 2, '800'), stop, start('700', false), ins('t', 3, '702'), ins('k', 3, '702'), ins('t', 4, '700'), stop],
  [{ kind: 'stream-abort', xid: '700', subxid: '702' }],
  [{ kind: 'stream-commit', xid: '800', position: '0/200', time: Date.now() }, begin('0/210'), ins('u', 51), commit('0/220')],
  [start('900'), ins('t', 99, '900'), ins('k', 99, '900'), stop, { kind: 'stream-abort', xid: '900', subxid: '900' }],
  [start('700', false), ins('w', 7, '700'), stop, { kind: 'stream-commit', xid: '700', position: '0/300', time: Date.now() }],
  [{ kind: 'heartbeat', position: '0/310', time: Date.now() }],
];
const STREAMED_RESULT = { t: '1,2,10', u: '50,51', w: '7', k: '1,2' };

describe('streamed transactions on a real target', () => {
  it('interleaved streamed transactions land whole, aborts leave nothing; a restart from an older checkpoint converges exactly', async () => {
    const env = await setup('streamed');
    const acks = await play(env, STREAMED, '0/310');
    expect(await contents(env.urls.targetUrl)).toEqual(STREAMED_RESULT);
    expect(await positions(env.urls.targetUrl)).toEqual([{ flow: 'f', position: '0/300' }]);
    // Exact and in order: each acknowledgement is a commit or the idle position after everything.
    expect(acks.every((a, i) => i === 0 || compareLsn(a, acks[i - 1]!) > 0)).toBe(true);
    expect(acks.at(-1)).toBe('0/310');
    expect(acks.filter((a) => !['0/120', '0/200', '0/220', '0/300', '0/310'].includes(a))).toEqual([]);

    // The checkpoint was lost (0/100): the source resends everything; the target skips or rolls back what it has.
    await play(env, STREAMED, '0/310', {}, '0/100');
    expect(await contents(env.urls.targetUrl)).toEqual(STREAMED_RESULT); // the keyless table has no duplicates
  }, 120_000);

  it('a stop while a streamed transaction is open rolls it back; the next run applies it whole when the source resends it', async () => {
    const env = await setup('resend');
    const first: StreamEvent[][] = [[start('700'), ins('t', 1, '700'), ins('k', 1, '700'), stop], [begin('0/110'), ins('u', 5), commit('0/120')]];
    await play(env, first, '0/120');
    expect(await contents(env.urls.targetUrl)).toEqual({ t: '', u: '5', w: '', k: '' });
    // On restart PostgreSQL sends the open transaction again from its first block (its commit is after 0/120).
    const second: StreamEvent[][] = [[start('700'), ins('t', 1, '700'), ins('k', 1, '700'), stop, { kind: 'stream-commit', xid: '700', position: '0/200', time: Date.now() }]];
    await play(env, second, '0/200', {}, '0/120');
    expect(await contents(env.urls.targetUrl)).toEqual({ t: '1', u: '5', w: '', k: '1' });
  }, 120_000);
});

describe('apply lanes (consistency: table) on a real target', () => {
  const lanes = 3;
  const spread = new Set(['app.t', 'app.u', 'app.w', 'app.k'].map((t) => laneOf(t, lanes)));
  const script: StreamEvent[][] = [
    [begin('0/110'), ins('t', 1), ins('u', 1), ins('w', 1), ins('k', 1), commit('0/120')],
    [begin('0/130'), ins('t', 2), del('u', 1), ins('k', 2), commit('0/140'), begin('0/150'), ins('w', 2), commit('0/160')],
    // Across lanes: serial on lane 0.
    [begin('0/170'), ins('t', 3), { kind: 'change', change: { op: 'truncate', tables: ['app.t', 'app.u', 'app.w', 'app.k'], cascade: false, restartIdentity: false } }, ins('t', 4), ins('k', 4), commit('0/180')],
    [start('700'), ins('u', 70, '700'), ins('k', 70, '700'), stop, begin('0/190'), ins('w', 9), commit('0/200'), { kind: 'stream-commit', xid: '700', position: '0/210', time: Date.now() }],
    ...Array.from({ length: 20 }, (_, i) => [begin(`0/${(0x300 + i * 16).toString(16)}`), ins('t', 100 + i), ins('u', 100 + i), ins('k', 100 + i), commit(`0/${(0x308 + i * 16).toString(16)}`)]),
    [{ kind: 'heartbeat', position: '0/500', time: Date.now() }],
  ];
  const ids = (from: number) => Array.from({ length: 20 }, (_, i) => String(from + i)).join(',');
  const result = { t: `4,${ids(100)}`, u: `70,${ids(100)}`, w: '9', k: `4,70,${ids(100)}` };

  it('each lane records its own position; a restart from an older checkpoint skips per lane exactly; a layout change after a clean stop converges', async () => {
    expect(spread.size).toBeGreaterThan(1); // the four tables do not all hash to one lane
    const env = await setup('lanes');
    const opts = { consistency: 'table' as const, lanes };
    const acks = await play(env, script, '0/500', opts);
    expect(await contents(env.urls.targetUrl)).toEqual(result);
    expect(acks.at(-1)).toBe('0/500');
    const rows = await positions(env.urls.targetUrl);
    expect(rows.map((r) => r.flow)).toEqual(['f#1.0', 'f#1.1', 'f#1.2']);
    // A clean stop leaves every lane at the final position.
    expect(new Set(rows.map((r) => r.position))).toEqual(new Set(['0/500']));

    await play(env, script, '0/500', opts, '0/100');
    expect(await contents(env.urls.targetUrl)).toEqual(result); // no duplicate in the keyless table

    // Two lanes now: a new generation starts at the oldest old lane's position, which a clean stop made the end.
    await play(env, script, '0/500', { consistency: 'table', lanes: 2 }, '0/100');
    expect(await contents(env.urls.targetUrl)).toEqual(result);
    // And back to one lane (consistency: transaction).
    await play(env, script, '0/500', {}, '0/100');
    expect(await contents(env.urls.targetUrl)).toEqual(result);
  }, 180_000);
});

describe('adaptive commits on a real target', () => {
  it('a quiet source: a transaction is committed within milliseconds, not after batchMs', async () => {
    const env = await setup('quiet');
    const t0 = Date.now();
    await play(env, [[begin('0/110'), ins('t', 1), commit('0/120')]], '0/120', { batchMs: 20_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await contents(env.urls.targetUrl)).toMatchObject({ t: '1' });
  }, 60_000);
});
