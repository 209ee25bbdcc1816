/**
 * The one-lane fast path (consistency: transaction) end to end through the executor on a real PostgreSQL target
 * (PgChangeTarget), fed scripted one-row transactions in hand-overs of varying size with keepalives between them:
 * the target ends equal to the script, every acknowledgement is exact (a commit or keepalive position, in order,
 * each one after the target committed it), and a quiet source commits at once while a busy one groups.
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
import { CDC_CHECKPOINT, runStreamer, streamerConnections } from '../src/core/cdc/streamer.js';
import type { ChangeSource, StreamEvent } from '../src/core/ports/change-source.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { seededRng } from './support/rng.js';

const pair = usePgPair();
const dir = mkdtempSync(join(tmpdir(), 'ferry-onerow-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lsn = (n: number) => `0/${n.toString(16).toUpperCase()}`;
type Step = StreamEvent[] | { waitMs: number };

/** Plays hand-overs (and pauses); records each acknowledgement with what the target had committed by then. */
class ScriptedSource {
  readonly acks: { position: string; committed: string | undefined }[] = [];
  constructor(
    private readonly steps: Step[],
    private readonly targetUrl: string,
  ) {}
  compare(a: unknown, b: unknown) {
    return compareLsn(a as string, b as string);
  }
  async stream(_f: string, _t: unknown, _from: unknown, onEvents: (e: StreamEvent[]) => Promise<void>, signal: AbortSignal) {
    for (const s of this.steps) {
      if (signal.aborted) break;
      if ('waitMs' in s) await new Promise((r) => setTimeout(r, s.waitMs));
      else await onEvents(s);
    }
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
  }
  async acknowledge(p: unknown) {
    const rows = await query<{ position: string }>(this.targetUrl, `SELECT position FROM _ferry.cdc_position WHERE flow = 'f'`);
    this.acks.push({ position: p as string, committed: rows[0]?.position });
  }
  async fetchRows() {
    return [];
  }
}

async function setup(name: string) {
  const urls = await freshDatabases(pair(), name);
  await query(urls.targetUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text)`);
  const c = new pg.Client(urls.targetUrl);
  await c.connect();
  const tables = await describeTables(c, { include: ['app.*'], exclude: [], rename: {} });
  await c.end();
  const store = new SqliteStateStore(join(dir, `${name}.db`));
  await store.putCheckpoint('f', CDC_CHECKPOINT, '0/100');
  return { urls, tables, store };
}

async function play(env: Awaited<ReturnType<typeof setup>>, steps: Step[], until: string, batchMs: number) {
  const source = new ScriptedSource(steps, env.urls.targetUrl);
  const target = new PgChangeTarget({ url: env.urls.targetUrl }, { connections: streamerConnections({}) });
  const stop = new AbortController();
  const commits: { transactions: number; at: number }[] = [];
  try {
    const run = runStreamer(
      { source: source as unknown as ChangeSource, target, store: env.store },
      { flow: 'f', tables: env.tables, batchMs, signal: stop.signal, onApplied: (i) => commits.push({ transactions: i.transactions, at: Date.now() }) },
    );
    const deadline = Date.now() + 60_000;
    while (!source.acks.some((a) => compareLsn(a.position, until) >= 0)) {
      if (Date.now() > deadline) throw new Error(`not acknowledged: ${until} (last: ${source.acks.at(-1)?.position})`);
      await Promise.race([run, new Promise((r) => setTimeout(r, 10))]);
    }
    stop.abort();
    await run;
    return { acks: source.acks, commits };
  } finally {
    await target.close();
  }
}

describe('one-lane fast path on a real target', () => {
  it('3000 one-row transactions in hand-overs of 1 to 60, keepalives between: the target equals the script, every ack exact and after its commit', async () => {
    const env = await setup('onerow');
    const gen = seededRng(10);
    const random = () => gen.next();
    const expected = new Map<number, string>();
    const commitPositions = new Set<string>();
    const keepalives = new Set<string>();
    const steps: Step[] = [];
    let at = 0x1000;
    let batch: StreamEvent[] = [];
    for (let i = 0; i < 3000; i++) {
      const id = Math.floor(random() * 800);
      const op = random();
      const change: StreamEvent =
        op < 0.6 || !expected.has(id)
          ? { kind: 'change', change: { op: 'insert', table: 'app.t', row: { id: String(id), v: `i${i}` } } }
          : op < 0.85
            ? { kind: 'change', change: { op: 'update', table: 'app.t', row: { id: String(id), v: `u${i}` }, old: null } }
            : { kind: 'change', change: { op: 'delete', table: 'app.t', old: { id: String(id) } } };
      if (change.kind === 'change' && change.change.op === 'delete') expected.delete(id);
      else if (change.kind === 'change' && change.change.op !== 'truncate') expected.set(id, (change.change as unknown as { row: { v: string } }).row.v);
      batch.push({ kind: 'begin', position: lsn(at + 8), time: Date.now() }, change, { kind: 'commit', position: lsn(at + 16), time: Date.now() });
      commitPositions.add(lsn(at + 16));
      if (random() < 0.3) {
        batch.push({ kind: 'keepalive', position: lsn(at + 24), time: Date.now() });
        keepalives.add(lsn(at + 24));
      }
      at += 32;
      if (random() < 1 / 30) {
        steps.push(batch);
        batch = [];
        if (random() < 0.2) steps.push({ waitMs: 5 + Math.floor(random() * 20) }); // quiet for a moment
      }
    }
    steps.push(batch);
    const last = lsn(at - 16);
    const { acks, commits } = await play(env, steps, last, 200);

    const rows = await query<{ id: string; v: string }>(env.urls.targetUrl, `SELECT t.id::text AS id, t.v FROM app.t t ORDER BY t.id`);
    expect(rows.map((r) => [r.id, r.v])).toEqual([...expected.entries()].sort((a, b) => a[0] - b[0]).map(([id, v]) => [String(id), v]));
    // Acks in order, each a commit or a keepalive position of the script, and never past what the target committed.
    expect(acks.every((a, i) => i === 0 || compareLsn(a.position, acks[i - 1]!.position) > 0)).toBe(true);
    for (const a of acks) {
      expect(commitPositions.has(a.position) || keepalives.has(a.position)).toBe(true);
      expect(a.committed).toBeDefined();
      // The target had already committed everything the ack covers: its recorded position is at least the last
      // commit at or before the acknowledged position (later commits may already be done: acks follow commits).
      const covered = [...commitPositions].filter((c) => compareLsn(c, a.position) <= 0).sort(compareLsn).at(-1)!;
      expect(compareLsn(a.committed!, covered)).toBeGreaterThanOrEqual(0);
    }
    expect(compareLsn(acks.at(-1)!.position, last)).toBeGreaterThanOrEqual(0);
    expect(await env.store.getCheckpoint('f', CDC_CHECKPOINT)).toBe(acks.at(-1)!.position);
    // Whole transactions grouped: far fewer target commits than source transactions.
    expect(commits.reduce((n, c) => n + c.transactions, 0)).toBe(3000);
    expect(commits.length).toBeLessThan(600);
  }, 180_000);

  it('quiet source: each lone transaction commits at once; a burst groups', async () => {
    const env = await setup('onerow_quiet');
    const steps: Step[] = [];
    let at = 0x1000;
    const txn = (id: number): StreamEvent[] => {
      at += 32;
      return [
        { kind: 'begin', position: lsn(at - 24), time: Date.now() },
        { kind: 'change', change: { op: 'insert', table: 'app.t', row: { id: String(id), v: 'x' } } },
        { kind: 'commit', position: lsn(at - 16), time: Date.now() },
      ];
    };
    for (let i = 0; i < 5; i++) steps.push(txn(i), { waitMs: 300 }); // lone transactions, 300 ms apart
    steps.push(Array.from({ length: 2000 }, (_, i) => txn(100 + i)).flat()); // a burst, in one hand-over
    const t0 = Date.now();
    const { commits } = await play(env, steps, lsn(at - 16), 60_000);
    // batchMs is a minute: only quiet commits can have ended this in time.
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(commits.slice(0, 5).map((c) => c.transactions)).toEqual([1, 1, 1, 1, 1]);
    expect(commits.slice(5).reduce((n, c) => n + c.transactions, 0)).toBe(2000);
    expect(commits.length).toBeLessThan(5 + 20);
    expect((await query<{ n: string }>(env.urls.targetUrl, `SELECT count(*) n FROM app.t`))[0]!.n).toBe('2005');
  }, 120_000);
});
