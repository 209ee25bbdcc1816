/**
 * The ChangeSource contract, run against every adapter with the capabilities it is registered with.
 *
 * Pinned here: a stream from a start position delivers the changes committed after it and none before, in commit
 * order, each transaction between one begin and one commit (`transactions`), commit positions increasing under the
 * source's own `compare`; an unacknowledged transaction is delivered again by a new stream from the same position;
 * a stream from an acknowledged commit position continues with the next transaction; `prepare` of a new flow gives
 * a consistent read handle when `consistentSnapshot`, and none when resumed; `cleanup` is idempotent and, with
 * `flowState`, a resumed `prepare` after it fails (never silently recreates).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Position, TableSchema } from '../../src/core/model.js';
import type { ChangeSourceCapabilities } from '../../src/core/ports/capabilities.js';
import type { Change, ChangeSource, StreamEvent } from '../../src/core/ports/change-source.js';
import type { SnapshotSource } from '../../src/core/ports/source.js';
import { byId, eventually, rowsFrom, uniqueName, type EngineFixture, type Row, type RowStreamCodecForTests } from './fixture.js';
import { readRange, type ContractOptions } from './snapshot-source.contract.js';

export interface ChangeSourceHarness {
  /** A new adapter on the source database (each call stands for another process). Closed by the suite. */
  open(): Promise<ChangeSource>;
  fixture: EngineFixture;
  /** The engine's snapshot source on the same database: describes tables, reads under a read handle. */
  snapshot: SnapshotSource;
  streams: RowStreamCodecForTests;
  cleanup(): Promise<void>;
}

/** A running stream collecting everything it delivers. */
export interface Collector {
  events: StreamEvent[];
  /** Changes of `table` (a ports table key), in delivery order. */
  changes(table: string): Change[];
  commits(): Position[];
  stop(): Promise<void>;
}

export function collect(source: ChangeSource, flow: string, tables: TableSchema[], from: Position): Collector {
  const events: StreamEvent[] = [];
  const ac = new AbortController();
  let failure: unknown;
  const done = source
    .stream(flow, tables, from, async (evs) => void events.push(...evs), ac.signal)
    .catch((err: unknown) => void (failure = err));
  return {
    events,
    changes: (table) =>
      events.flatMap((e) => (e.kind === 'change' && (e.change.op === 'truncate' ? e.change.tables.includes(table) : e.change.table === table) ? [e.change] : [])),
    commits: () => events.flatMap((e) => (e.kind === 'commit' || e.kind === 'stream-commit' ? [e.position] : [])),
    async stop() {
      ac.abort();
      await done;
      if (failure) throw failure;
    },
  };
}

export function changeSourceContract(
  name: string,
  caps: ChangeSourceCapabilities,
  make: () => Promise<ChangeSourceHarness>,
  opts: ContractOptions = {},
): void {
  (opts.skip ? describe.skip : describe)(`ChangeSource contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let h: ChangeSourceHarness;
    let opened: ChangeSource[];
    let flows: string[];
    let collectors: Collector[];
    beforeEach(async () => {
      h = await make();
      opened = [];
      flows = [];
      collectors = [];
    });
    afterEach(async () => {
      await Promise.allSettled(collectors.map((c) => c.stop()));
      const last = await open();
      for (const f of flows) await last.cleanup(f).catch(() => {});
      await Promise.allSettled(opened.map((s) => s.close()));
      await h.cleanup();
    });

    const open = async () => {
      const s = await h.open();
      opened.push(s);
      return s;
    };
    const start = (s: ChangeSource, flow: string, tables: TableSchema[], from: Position) => {
      const c = collect(s, flow, tables, from);
      collectors.push(c);
      return c;
    };
    /** A table with `n` rows, a new flow prepared on it: everything after `position` is to be streamed. */
    const flowOn = async (n: number, o: { keyless?: boolean } = {}) => {
      const tname = uniqueName('cs');
      const flow = uniqueName('flow');
      await h.fixture.create(tname, rowsFrom(1, n), o);
      const tables = await h.snapshot.describe(h.fixture.selection([tname]));
      const s = await open();
      await s.preflight(flow, tables);
      flows.push(flow);
      const sp = await s.prepare(flow, tables, { resuming: false });
      return { s, flow, tname, key: h.fixture.tableKey(tname), tables, sp };
    };
    const decoded = (c: Change): Partial<Row> & { op: string } =>
      c.op === 'insert' ? { op: c.op, ...h.fixture.decode(c.row) }
      : c.op === 'update' ? { op: c.op, ...h.fixture.decode(c.row) }
      : c.op === 'delete' ? { op: c.op, id: h.fixture.decode(c.old).id }
      : { op: c.op };

    it('declares the capabilities it is registered with', async () => {
      expect((await open()).capabilities).toEqual(caps);
    });

    it('delivers the changes committed after the start position, in order, each transaction between begin and commit', async () => {
      const { s, flow, tname, key, tables, sp } = await flowOn(3);
      await h.fixture.write([{ op: 'insert', table: tname, rows: rowsFrom(4, 5) }]);
      await h.fixture.write([
        { op: 'update', table: tname, ids: [2], v: 'two' },
        { op: 'delete', table: tname, ids: [3] },
      ]);
      await h.fixture.write([{ op: 'insert', table: tname, rows: [{ id: 6, v: null }] }]);
      const c = start(s, flow, tables, sp.position);
      await eventually(() => (c.changes(key).length >= 5 ? true : undefined), 30_000, 'five changes');
      expect(c.changes(key).map(decoded)).toEqual([
        { op: 'insert', id: 4, v: 'v4' },
        { op: 'insert', id: 5, v: 'v5' },
        { op: 'update', id: 2, v: 'two' },
        { op: 'delete', id: 3 },
        { op: 'insert', id: 6, v: null },
      ]);
      const commits = c.commits();
      for (let i = 1; i < commits.length; i++) expect(s.compare(commits[i - 1]!, commits[i]!)).toBeLessThan(0);
      expect(s.compare(sp.position, commits[0]!)).toBeLessThan(0);
      if (caps.transactions) {
        // Our three transactions: begin, their changes, commit; nothing of ours outside them.
        let open_ = false;
        let txns = 0;
        for (const e of c.events) {
          if (e.kind === 'begin') open_ = true;
          if (e.kind === 'commit') {
            if (open_) txns++;
            open_ = false;
          }
          if (e.kind === 'change') expect(open_).toBe(true);
        }
        expect(txns).toBeGreaterThanOrEqual(3);
      }
      if (!caps.streamedTransactions) expect(c.events.filter((e) => e.kind.startsWith('stream-'))).toEqual([]);
      const now = await s.currentPosition();
      expect(s.compare(now, commits[commits.length - 1]!)).toBeGreaterThanOrEqual(0);
      expect(s.compare(now, now)).toBe(0);
    });

    it('an unacknowledged transaction is delivered again; from an acknowledged commit the stream continues with the next', async () => {
      const { s, flow, tname, key, tables, sp } = await flowOn(0);
      await h.fixture.write([{ op: 'insert', table: tname, rows: [{ id: 1, v: 'a' }] }]);
      await h.fixture.write([{ op: 'insert', table: tname, rows: [{ id: 2, v: 'b' }] }]);
      const first = start(s, flow, tables, sp.position);
      await eventually(() => (first.changes(key).length >= 2 ? true : undefined), 30_000, 'two inserts');
      await first.stop();

      // Nothing acknowledged: another process streaming from the start position gets both again.
      const s2 = await open();
      const again = start(s2, flow, tables, sp.position);
      await eventually(() => (again.changes(key).length >= 2 ? true : undefined), 30_000, 'the replay');
      expect(again.changes(key).map(decoded).map((r) => r.id)).toEqual([1, 2]);
      // Acknowledge the first transaction's commit, while streaming (that is when the streamer does it).
      const commitOf = (c: Collector, id: number) => {
        let seen = false;
        for (const e of c.events) {
          if (e.kind === 'change' && e.change.op === 'insert' && h.fixture.decode(e.change.row).id === id) seen = true;
          if (seen && e.kind === 'commit') return e.position;
        }
        throw new Error(`no commit after the insert of ${id}`);
      };
      const c1 = commitOf(again, 1);
      await s2.acknowledge(c1);
      await again.stop();

      const s3 = await open();
      const rest = start(s3, flow, tables, c1);
      await h.fixture.write([{ op: 'insert', table: tname, rows: [{ id: 3, v: 'c' }] }]);
      await eventually(() => (rest.changes(key).length >= 2 ? true : undefined), 30_000, 'the rest');
      expect(rest.changes(key).map(decoded).map((r) => r.id)).toEqual([2, 3]);
    });

    it('prepare is idempotent: resumed, it returns no read handle; resuming an unknown flow fails', async () => {
      const { flow, tables, sp } = await flowOn(1);
      if (caps.consistentSnapshot) expect(sp.snapshot ?? null).not.toBeNull();
      const s2 = await open();
      const again = await s2.prepare(flow, tables, { resuming: true });
      expect(again.snapshot ?? null).toBeNull();
      expect(JSON.parse(JSON.stringify(again.position))).toEqual(again.position);
      if (caps.flowState) {
        const unknown = uniqueName('flow');
        flows.push(unknown);
        await expect(s2.prepare(unknown, tables, { resuming: true })).rejects.toThrow();
      }
    });

    it('cleanup is idempotent (flowState: and a resumed prepare after it fails instead of starting over silently)', async () => {
      const { s, flow, tables } = await flowOn(1);
      await s.releaseSnapshot();
      await s.cleanup(flow);
      await s.cleanup(flow);
      if (caps.flowState) await expect((await open()).prepare(flow, tables, { resuming: true })).rejects.toThrow();
    });

    it('fetchRows returns the current rows of the keys that exist, and leaves the others out', async () => {
      const { s, tname, tables } = await flowOn(5);
      await h.fixture.write([{ op: 'update', table: tname, ids: [2], v: 'now' }]);
      const got = await s.fetchRows(tables[0]!, [h.fixture.key(2), h.fixture.key(4), h.fixture.key(99)]);
      expect(got.map((r) => h.fixture.decode(r) as Row).sort(byId)).toEqual([{ id: 2, v: 'now' }, { id: 4, v: 'v4' }]);
      expect(await s.fetchRows(tables[0]!, [])).toEqual([]);
    });

    it('lag fills the fields it declares', async () => {
      const { s, flow } = await flowOn(1);
      const lag = await eventually(() => s.lag(flow), 10_000, 'lag');
      expect(typeof lag.active).toBe('boolean');
      expect(typeof lag.lagBytes === 'number').toBe(caps.lag.bytes);
      expect(typeof lag.retained === 'number').toBe(caps.lag.retained);
      expect(typeof lag.horizonSeconds === 'number').toBe(caps.lag.horizon);
      if (caps.flowState) expect(await s.lag(uniqueName('flow'))).toBeUndefined();
    });

    it.skipIf(!caps.consistentSnapshot)('consistentSnapshot: reads under the handle see the data at the start position, the stream the rest', async () => {
      expect(h.snapshot.capabilities.consistentRead).toBe(true);
      const { s, flow, tname, key, tables, sp } = await flowOn(20);
      await h.fixture.write([
        { op: 'update', table: tname, ids: [1], v: 'after' },
        { op: 'insert', table: tname, rows: [{ id: 21, v: 'new' }] },
      ]);
      h.snapshot.useSnapshot!(sp.snapshot!);
      const [r] = await h.snapshot.planRanges(tables[0]!, 1_000_000);
      const under = (await readRange(h.snapshot, h.streams, tables[0]!, r!.range, 1000)).rows.sort(byId);
      expect(under).toEqual(rowsFrom(1, 20));
      h.snapshot.useSnapshot!(undefined);
      await s.releaseSnapshot();
      const latest = (await readRange(h.snapshot, h.streams, tables[0]!, r!.range, 1000)).rows.sort(byId);
      expect(latest.find((x) => x.id === 1)?.v).toBe('after');
      const c = start(s, flow, tables, sp.position);
      await eventually(() => (c.changes(key).length >= 2 ? true : undefined), 30_000, 'the changes after the snapshot');
      expect(c.changes(key).map(decoded)).toEqual([
        { op: 'update', id: 1, v: 'after' },
        { op: 'insert', id: 21, v: 'new' },
      ]);
    });

    it.skipIf(!caps.truncate)('truncate: a truncated table arrives as one truncate change naming it', async () => {
      const { s, flow, tname, key, tables, sp } = await flowOn(3);
      await h.fixture.write([{ op: 'truncate', table: tname }]);
      const c = start(s, flow, tables, sp.position);
      const [t] = await eventually(() => (c.changes(key).length >= 1 ? c.changes(key) : undefined), 30_000, 'the truncate');
      expect(t!.op).toBe('truncate');
    });

    it.skipIf(!caps.keylessTables)('keylessTables: changes of a table without a key carry the whole old row', async () => {
      const { s, flow, tname, key, tables, sp } = await flowOn(3, { keyless: true });
      expect(tables[0]!.primaryKey).toEqual([]);
      await h.fixture.write([{ op: 'update', table: tname, ids: [2], v: 'two' }]);
      await h.fixture.write([{ op: 'delete', table: tname, ids: [3] }]);
      const c = start(s, flow, tables, sp.position);
      const got = await eventually(() => (c.changes(key).length >= 2 ? c.changes(key) : undefined), 30_000, 'keyless changes');
      const [u, d] = got as [Extract<Change, { op: 'update' }>, Extract<Change, { op: 'delete' }>];
      expect(h.fixture.decode(u.old!)).toEqual({ id: 2, v: 'v2' });
      expect(h.fixture.decode(u.row)).toEqual({ id: 2, v: 'two' });
      expect(h.fixture.decode(d.old)).toEqual({ id: 3, v: 'v3' });
    });

    it.skipIf(!caps.schemaFollow)('schemaFollow: streamHooks is implemented', async () => {
      expect(typeof (await open()).streamHooks).toBe('function');
    });
  });
}
