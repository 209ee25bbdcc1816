/**
 * Streaming of in-progress transactions (pgoutput protocol 2, `streaming 'on'`) against real PostgreSQL 18, with a
 * walsender logical_decoding_work_mem of 64kB so that a few thousand rows are streamed before they commit:
 * - a committed large transaction: blocks, then stream-commit at the same position v1's commit has (read from a
 *   second slot with the option off: the v1 fallback), with the same changes; acknowledging that position skips it
 *   after a restart and the next transaction arrives;
 * - a rolled-back one: stream-abort with subxid = xid; a ROLLBACK TO SAVEPOINT: stream-abort with the subxid the
 *   rolled-back changes carried;
 * - two sessions' transactions interleaved: each block's changes carry its own xid (through PgChangeSource).
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { pgEndpoint, rawTypes } from '../src/adapters/postgres/connect.js';
import { openReplicationStream, type ReplicationStream } from '../src/adapters/postgres/cdc/pgoutput-stream.js';
import { slotName } from '../src/adapters/postgres/cdc/names.js';
import { PgChangeSource } from '../src/adapters/postgres/cdc/change-source.js';
import type { Change, StreamEvent } from '../src/core/ports/change-source.js';
import { waitFor } from './support/ferry-cli.js';
import { query } from './support/pg-pair.js';

const SMALL_WORK_MEM = { logical_decoding_work_mem: '64kB' };

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ logical: true });
}, 120_000);
/** Streams still open after a failed test: stopped, or the cluster's shutdown would wait for them. */
const open = new Set<ReplicationStream>();
afterEach(async () => {
  await Promise.allSettled([...open].map((s) => s.stop()));
  open.clear();
});
afterAll(async () => {
  await cluster?.stop();
});

/** A database with table app.t and `slots` slots (flow, flow_v1, ...) made before anything is written. */
async function setup(name: string, slots: string[] = [name]): Promise<{ url: string; created: string[] }> {
  await cluster.createDatabase(name);
  const url = cluster.urlFor(name);
  await query(url, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text, pad text)`);
  const created: string[] = [];
  for (const flow of slots) {
    await query(url, `CREATE PUBLICATION ${slotName(flow)} FOR TABLE app.t`);
    const [r] = await query(url, `SELECT lsn::text AS lsn FROM pg_create_logical_replication_slot('${slotName(flow)}', 'pgoutput')`);
    created.push(r!.lsn!);
  }
  return { url, created };
}

interface Reading {
  got: StreamEvent[];
  stream: ReplicationStream;
  until(what: string, done: (got: StreamEvent[]) => boolean, ms?: number): Promise<void>;
}

async function read(url: string, flow: string, from: string, streamInProgress: boolean): Promise<Reading> {
  const got: StreamEvent[] = [];
  const stream = await openReplicationStream(
    pgEndpoint({ url } as never, 'source'),
    flow,
    from,
    async (events) => void got.push(...events.filter((e) => e.kind !== 'keepalive')),
    { streamInProgress, sessionSettings: SMALL_WORK_MEM },
  );
  open.add(stream);
  return {
    got,
    stream,
    until: (what, done, ms = 60_000) => waitFor(what, async () => done(got), ms).then(() => {}),
  };
}

async function session(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  c.on('error', () => {}); // a failed test's session must not crash the run when the cluster stops
  await c.connect();
  return c;
}

const PAD = 'x'.repeat(60);
const insertRows = (c: pg.Client, from: number, n: number, v: string) =>
  c.query(`INSERT INTO app.t SELECT g, '${v}', '${PAD}' || g FROM generate_series(${from}, ${from + n - 1}) g`);
const xidOf = async (c: pg.Client) => (await c.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;

const changes = (events: StreamEvent[]) => events.filter((e): e is Extract<StreamEvent, { kind: 'change' }> => e.kind === 'change');
const rowsOf = (events: StreamEvent[]) => changes(events).map((e) => (e.change as Extract<Change, { op: 'insert' }>).row);
const kinds = (events: StreamEvent[]) => events.map((e) => e.kind).filter((k, i, a) => k !== 'change' && k !== 'relation' || a[i - 1] !== k);

/** The blocks of the stream: their xid, and the changes inside each. */
function blocks(events: StreamEvent[], partial = false): { xid: string; first: boolean; changes: Extract<StreamEvent, { kind: 'change' }>[] }[] {
  const out: ReturnType<typeof blocks> = [];
  let open: (typeof out)[number] | undefined;
  for (const e of events) {
    if (e.kind === 'stream-start') {
      expect(open, 'a block opened inside another').toBeUndefined();
      open = { xid: e.xid, first: e.first, changes: [] };
    } else if (e.kind === 'stream-stop') {
      expect(open, 'a stream-stop outside a block').toBeDefined();
      out.push(open!);
      open = undefined;
    } else if (e.kind === 'change') {
      if (open) open.changes.push(e);
      else expect(e.xid, 'a change outside a block carries no xid').toBeUndefined();
    } else {
      // Nothing but relations (and keepalives, filtered out) inside a block.
      if (open) expect(['relation', 'message'], `a ${e.kind} inside a block`).toContain(e.kind);
    }
  }
  if (!partial) expect(open, 'the last block was not closed').toBeUndefined();
  return out;
}

describe('streamed in-progress transactions (protocol 2)', () => {
  it('a large committed transaction: blocks then stream-commit at v1 commit position, same changes; acknowledged, it is not resent', async () => {
    const { url, created } = await setup('big', ['big', 'big_v1']);
    const v2 = await read(url, 'big', created[0]!, true);
    const v1 = await read(url, 'big_v1', created[1]!, false);
    expect(v2.stream.protoVersion).toBe(2);
    expect(v1.stream.protoVersion).toBe(1);

    const c = await session(url);
    await c.query('BEGIN');
    const xid = await xidOf(c);
    await insertRows(c, 1, 3000, 'a');
    // Streamed before the commit: the first block arrives while the transaction is still open.
    await v2.until('a first block before the commit', (got) => got.some((e) => e.kind === 'stream-stop'));
    await c.query(`UPDATE app.t SET v = 'b' WHERE id <= 10`);
    await c.query(`DELETE FROM app.t WHERE id > 2990`);
    await c.query('COMMIT');
    await c.end();
    await v2.until('the stream commit', (got) => got.some((e) => e.kind === 'stream-commit'));
    await v1.until('the commit', (got) => got.some((e) => e.kind === 'commit'));

    const bs = blocks(v2.got);
    expect(bs.length).toBeGreaterThan(1);
    expect(bs.every((b) => b.xid === xid)).toBe(true);
    expect(bs[0]!.first).toBe(true);
    expect(bs.slice(1).every((b) => !b.first)).toBe(true);
    expect(bs.flatMap((b) => b.changes).every((e) => e.xid === xid)).toBe(true);
    const commit = v2.got.find((e) => e.kind === 'stream-commit') as Extract<StreamEvent, { kind: 'stream-commit' }>;
    expect(commit.xid).toBe(xid);
    expect(v2.got.some((e) => e.kind === 'begin' || e.kind === 'commit' || e.kind === 'stream-abort')).toBe(false);
    // The v1 stream of the same WAL: one transaction, the same changes in the same order, the same commit position.
    const v1Commit = v1.got.find((e) => e.kind === 'commit') as Extract<StreamEvent, { kind: 'commit' }>;
    expect(v1.got.some((e) => e.kind.startsWith('stream-'))).toBe(false);
    expect(commit.position).toBe(v1Commit.position);
    expect(commit.time).toBe(v1Commit.time);
    expect(changes(v2.got).map((e) => e.change)).toEqual(changes(v1.got).map((e) => e.change));
    expect(changes(v2.got).length).toBe(3000 + 10 + 10);
    await v1.stream.stop();

    // Acknowledge the stream commit exactly, restart: the transaction is not resent, the next one arrives.
    const at = commit.position as string;
    v2.stream.acknowledge(at);
    await waitFor('the slot to confirm the stream commit', async () => {
      const [r] = await query(url, `SELECT confirmed_flush_lsn::text c FROM pg_replication_slots WHERE slot_name = '${slotName('big')}'`);
      return r!.c === at;
    }, 15_000);
    await v2.stream.stop();
    await query(url, `INSERT INTO app.t VALUES (5000, 'next', '')`);
    const again = await read(url, 'big', at, true);
    await again.until('the next transaction', (got) => got.some((e) => e.kind === 'commit'));
    await again.stream.stop();
    expect(again.got.some((e) => e.kind.startsWith('stream-'))).toBe(false);
    expect(rowsOf(again.got)).toEqual([{ id: '5000', v: 'next', pad: '' }]);
  }, 120_000);

  it('a large rolled-back transaction ends in stream-abort with subxid = xid, and no commit', async () => {
    const { url, created } = await setup('rb');
    const r = await read(url, 'rb', created[0]!, true);
    const c = await session(url);
    await c.query('BEGIN');
    const xid = await xidOf(c);
    await insertRows(c, 1, 3000, 'gone');
    await r.until('a block', (got) => got.some((e) => e.kind === 'stream-stop'));
    await c.query('ROLLBACK');
    await c.query(`INSERT INTO app.t VALUES (1, 'kept', '')`);
    await c.end();
    await r.until('the later commit', (got) => got.some((e) => e.kind === 'commit'));
    await r.stream.stop();
    const aborts = r.got.filter((e) => e.kind === 'stream-abort');
    expect(aborts).toEqual([{ kind: 'stream-abort', xid, subxid: xid }]);
    expect(r.got.some((e) => e.kind === 'stream-commit')).toBe(false);
    // The abort comes before the later transaction, outside any block.
    const at = r.got.findIndex((e) => e.kind === 'stream-abort');
    expect(r.got.findIndex((e) => e.kind === 'begin')).toBeGreaterThan(at);
    expect(blocks(r.got).every((b) => b.xid === xid)).toBe(true);
    expect(rowsOf(r.got.slice(at))).toEqual([{ id: '1', v: 'kept', pad: '' }]);
  }, 120_000);

  it('ROLLBACK TO SAVEPOINT inside a streamed transaction: stream-abort of the subtransaction, the rest commits', async () => {
    const { url, created } = await setup('sp');
    const r = await read(url, 'sp', created[0]!, true);
    const c = await session(url);
    await c.query('BEGIN');
    const xid = await xidOf(c);
    await insertRows(c, 1, 2000, 'keep1');
    await c.query('SAVEPOINT s');
    await insertRows(c, 10_001, 3000, 'drop');
    await r.until('the subtransaction streamed', (got) => blocks(got, true).some((b) => b.changes.some((e) => e.xid !== xid)));
    await c.query(`SELECT pg_logical_emit_message(true, 'app', 'in the dropped subtransaction')`);
    await insertRows(c, 13_001, 1000, 'drop');
    await c.query('ROLLBACK TO SAVEPOINT s');
    await c.query('SAVEPOINT s2');
    await insertRows(c, 20_001, 2000, 'keep2');
    await c.query('RELEASE SAVEPOINT s2');
    await c.query('COMMIT');
    await c.end();
    await r.until('the stream commit', (got) => got.some((e) => e.kind === 'stream-commit'));
    await r.stream.stop();

    const aborts = r.got.filter((e): e is Extract<StreamEvent, { kind: 'stream-abort' }> => e.kind === 'stream-abort');
    expect(aborts.length).toBe(1);
    const { subxid } = aborts[0]!;
    expect(aborts[0]!.xid).toBe(xid);
    expect(subxid).not.toBe(xid);
    const inBlocks = blocks(r.got).flatMap((b) => b.changes);
    expect(blocks(r.got).every((b) => b.xid === xid)).toBe(true);
    // Exactly the rolled-back rows carry the aborted subxid; the kept ones the top xid or the released subtransaction's.
    const rowV = (e: (typeof inBlocks)[number]) => (e.change as Extract<Change, { op: 'insert' }>).row.v;
    expect(inBlocks.filter((e) => e.xid === subxid).every((e) => rowV(e) === 'drop')).toBe(true);
    expect(inBlocks.filter((e) => rowV(e) === 'drop').every((e) => e.xid === subxid)).toBe(true);
    expect(inBlocks.filter((e) => rowV(e) === 'keep1').every((e) => e.xid === xid)).toBe(true);
    const keep2 = inBlocks.filter((e) => rowV(e) === 'keep2');
    expect(new Set(keep2.map((e) => e.xid)).size).toBe(1);
    expect([xid, subxid]).not.toContain(keep2[0]!.xid);
    // A transactional message of a streamed subtransaction carries an xid of the transaction (PostgreSQL sends the
    // top-level one in some versions: an upstream fix of stream_message_cb_wrapper is under way), so which one is logged.
    const msg = r.got.find((e): e is Extract<StreamEvent, { kind: 'message' }> => e.kind === 'message');
    expect(msg?.content).toBe('in the dropped subtransaction');
    expect([xid, subxid]).toContain(msg!.xid);
    console.log(`a message in subtransaction ${subxid} of ${xid} carried xid ${msg!.xid}`);
    // The abort arrives after the dropped changes (not inside a block) and before the commit.
    const abortAt = r.got.indexOf(aborts[0]!);
    expect(r.got.slice(abortAt + 1).some((e) => e.kind === 'change' && e.xid === subxid)).toBe(false);
    expect(r.got.findIndex((e) => e.kind === 'stream-commit')).toBeGreaterThan(abortAt);
    // What survives the abort is what the table holds.
    const survived = inBlocks.filter((e) => e.xid !== subxid).map((e) => (e.change as Extract<Change, { op: 'insert' }>).row);
    const table = await query(url, `SELECT t.id::text AS id, t.v, t.pad FROM app.t t ORDER BY t.id`);
    expect(survived).toEqual(table);
  }, 120_000);

  it('two sessions interleaved: blocks alternate, each change carries its own transaction xid (through PgChangeSource)', async () => {
    const { url, created } = await setup('il');
    const got: StreamEvent[] = [];
    const source = new PgChangeSource({ url } as never, { streamInProgress: true, replicationSettings: SMALL_WORK_MEM, heartbeatMs: 60_000 });
    const abort = new AbortController();
    const streaming = source.stream('il', [], created[0]!, async (events) => void got.push(...events.filter((e) => e.kind !== 'keepalive' && e.kind !== 'heartbeat')), abort.signal);
    try {
      const a = await session(url);
      const b = await session(url);
      await a.query('BEGIN');
      await b.query('BEGIN');
      const [xa, xb] = [await xidOf(a), await xidOf(b)];
      const seen = (x: string, n: number) => () => waitFor(`${n} blocks of ${x}`, async () => blocks(got, true).filter((bl) => bl.xid === x).length >= n, 60_000);
      await insertRows(a, 1, 2500, 'a');
      await seen(xa, 1)();
      await insertRows(b, 100_001, 2500, 'b');
      await seen(xb, 1)();
      await insertRows(a, 2501, 2500, 'a');
      const nA = blocks(got, true).filter((bl) => bl.xid === xa).length;
      await seen(xa, nA + 1)();
      await insertRows(b, 102_501, 2500, 'b');
      await a.query('COMMIT');
      await b.query('COMMIT');
      await Promise.all([a.end(), b.end()]);
      await waitFor('both stream commits', async () => got.filter((e) => e.kind === 'stream-commit').length === 2, 60_000);

      const bs = blocks(got);
      const order = bs.map((bl) => bl.xid).filter((x, i, arr) => arr[i - 1] !== x);
      expect(order.length, `block order ${order.join(',')}`).toBeGreaterThanOrEqual(3); // a, b, a, ...: interleaved
      for (const bl of bs) expect(bl.changes.every((e) => e.xid === bl.xid)).toBe(true);
      for (const [x, v, from] of [[xa, 'a', 1], [xb, 'b', 100_001]] as const) {
        const rows = bs.filter((bl) => bl.xid === x).flatMap((bl) => bl.changes.map((e) => (e.change as Extract<Change, { op: 'insert' }>).row));
        expect(rows.every((row) => row.v === v)).toBe(true);
        expect(rows.map((row) => Number(row.id))).toEqual(Array.from({ length: 5000 }, (_, i) => from + i));
      }
      const commits = got.filter((e): e is Extract<StreamEvent, { kind: 'stream-commit' }> => e.kind === 'stream-commit');
      expect(commits.map((e) => e.xid)).toEqual([xa, xb]);
      expect(source.compare(commits[0]!.position, commits[1]!.position)).toBe(-1);
      expect(kinds(got).filter((k) => k === 'begin' || k === 'commit')).toEqual([]);
    } finally {
      abort.abort();
      await streaming;
      await source.close();
    }
  }, 120_000);

  it('small transactions stay ordinary begin/commit under protocol 2', async () => {
    const { url, created } = await setup('small');
    const r = await read(url, 'small', created[0]!, true);
    await query(url, `INSERT INTO app.t VALUES (1, 'one', ''); UPDATE app.t SET v = 'uno' WHERE id = 1`);
    await r.until('the commit', (got) => got.some((e) => e.kind === 'commit'));
    await r.stream.stop();
    expect(kinds(r.got)).toEqual(['begin', 'relation', 'change', 'commit']);
    expect(changes(r.got).map((e) => e.change)).toEqual([
      { op: 'insert', table: 'app.t', row: { id: '1', v: 'one', pad: '' } },
      { op: 'update', table: 'app.t', row: { id: '1', v: 'uno', pad: '' }, old: null },
    ]);
  }, 60_000);
});
