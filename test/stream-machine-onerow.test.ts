/**
 * The one-lane fast path of the state machine (`consistency: transaction`, the default) on scripted one-row
 * transactions: order, exact acknowledgement positions, grouping by time and size, quiet-source commits, and the
 * costs it must not pay per transaction (a commit point each, a position comparison each).
 */
import { describe, expect, it } from 'vitest';
import { compareLsn } from '../src/adapters/postgres/cdc/lsn.js';
import type { StreamAction } from '../src/core/cdc/stream-machine.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';
import { MachineSim, testMachine } from './support/machine-sim.js';

const lsn = (n: number) => `0/${n.toString(16).toUpperCase()}`;
/** Transaction i: begins at 0x1000 + 64 i + 40, commits (end) at + 48; a keepalive after it at + 56. */
const beginAt = (i: number) => lsn(0x1000 + i * 64 + 40);
const commitAt = (i: number) => lsn(0x1000 + i * 64 + 48);
const keepaliveAt = (i: number) => lsn(0x1000 + i * 64 + 56);
const txn = (i: number, table = 'app.t'): StreamEvent[] => [
  { kind: 'begin', position: beginAt(i), time: 1000 + i },
  { kind: 'change', change: { op: 'insert', table, row: { id: String(i) } } },
  { kind: 'commit', position: commitAt(i), time: 1000 + i },
];
const keepalive = (i: number): StreamEvent => ({ kind: 'keepalive', position: keepaliveAt(i), time: 1000 + i });
const commits = (a: StreamAction[]) => a.filter((x) => x.type === 'commit') as Extract<StreamAction, { type: 'commit' }>[];
/** The internal commit-point queue's length (the fast path keeps one point per open batch). */
const queued = (s: MachineSim) => {
  const q = (s.m as unknown as { points: { items: unknown[]; head: number } }).points;
  return q.items.length - q.head;
};

describe('StreamMachine one-lane fast path', () => {
  it('applies one-row transactions in order, commits whole groups at batchMs, and acknowledges exactly each commit', () => {
    const s = new MachineSim(testMachine({ batchMs: 100, applyChunk: 50 }));
    // 1000 transactions over 1 s of scripted time, handed over 10 at a time, never quiet (busy source).
    for (let i = 0; i < 1000; i += 10) {
      const now = i; // 1 transaction per ms
      const events = Array.from({ length: 10 }, (_, k) => txn(i + k)).flat();
      const out: StreamAction[] = [];
      for (const e of events) s.m.event(e, now, out); // one array per hand-over, as the executor does
      s.run(out);
      s.tick(now + 0.5, { sourceIdle: false });
    }
    s.tick(5000);
    expect(s.ids('app.t')).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    // Applied in source order, chunk by chunk.
    const applied = s.actions.flatMap((a) => (a.type === 'apply' ? a.changes.map((c) => (c.op === 'insert' ? Number(c.row.id) : -1)) : []));
    expect(applied).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const cs = commits(s.actions);
    // Grouped by time (about batchMs of transactions each), never more often.
    expect(cs.length).toBeGreaterThanOrEqual(9);
    expect(cs.length).toBeLessThanOrEqual(11);
    expect(cs.reduce((n, c) => n + c.transactions, 0)).toBe(1000);
    // Each commit is at a transaction's commit position and carries its own acknowledgement: nothing else is acked.
    for (const c of cs) expect(c.ack).toBe(true);
    expect(s.acks).toEqual(cs.map((c) => c.position));
    expect(s.acks.at(-1)).toBe(commitAt(999));
    expect(s.actions.filter((a) => a.type === 'advance')).toEqual([]);
  });

  it('keeps one commit point per open batch, however many transactions and keepalives it holds', () => {
    const s = new MachineSim(testMachine({ batchMs: 1_000_000, applyChunk: 1000 }));
    for (let i = 0; i < 5000; i++) {
      s.feed([...txn(i), keepalive(i)], 0);
      expect(queued(s)).toBe(1);
    }
    // The commit is at the last transaction's end; the keepalive after it is acknowledged after that commit.
    const out = s.tick(0, { sourceIdle: true });
    expect(commits(out)).toMatchObject([{ position: commitAt(4999), transactions: 5000, changes: 5000, ack: false }]);
    const id = commits(out)[0]!.id;
    expect(out.at(-1)).toEqual({ type: 'advance', position: keepaliveAt(4999), time: 1000 + 4999, after: [id] });
    expect(queued(s)).toBe(0);
    expect(s.acks).toEqual([keepaliveAt(4999)]);
  });

  it('commits at the boundary that reaches commitChanges, and a quiet tick never commits inside a transaction', () => {
    const s = new MachineSim(testMachine({ commitChanges: 2 }));
    const out: StreamAction[] = [];
    for (const e of [...txn(0), ...txn(1)]) s.m.event(e, 0, out);
    s.run(out);
    expect(commits(out)).toMatchObject([{ position: commitAt(1), transactions: 2, changes: 2, ack: true }]);
    s.feed([txn(2)[0]!, txn(2)[1]!], 1); // mid-transaction
    expect(s.tick(10, { sourceIdle: true })).toEqual([]);
    expect(s.machineCommittable).toBe(false);
    s.feed([txn(2)[2]!], 11);
    expect(commits(s.tick(15, { sourceIdle: true }))).toMatchObject([{ position: commitAt(2), transactions: 1 }]);
    expect(s.committed.map((c) => c.position)).toEqual([commitAt(1), commitAt(2)]);
    expect(s.acks).toEqual([commitAt(1), commitAt(2)]);
  });

  it('quiet source: commits at once; a commit in flight keeps grouping; the gap after a big commit groups the next burst', () => {
    const s = new MachineSim(testMachine({ minCommitGapMs: 10 }));
    s.feed(txn(0), 0);
    expect(s.tick(1, { sourceIdle: false })).toEqual([]); // events may follow
    expect(commits(s.tick(4, { sourceIdle: true }))).toMatchObject([{ position: commitAt(0), transactions: 1 }]);
    s.feed([...txn(1), ...txn(2)], 20);
    expect(s.tick(24, { sourceIdle: true, committing: [0] })).toEqual([]); // the previous commit is still running
    expect(commits(s.tick(26, { sourceIdle: true, committing: [] }))).toMatchObject([{ position: commitAt(2), transactions: 2 }]);
    expect(s.acks).toEqual([commitAt(0), commitAt(2)]);
    // A 300-transaction commit: the next quiet commit waits 300 ms after it (1 ms per transaction), batchMs at most.
    for (let i = 3; i < 303; i++) s.feed(txn(i), 30);
    expect(commits(s.tick(40, { sourceIdle: true }))).toMatchObject([{ transactions: 300 }]);
    s.feed(txn(303), 50);
    expect(s.tick(100, { sourceIdle: true })).toEqual([]);
    expect(s.machineCommittable).toBe(true);
    expect(commits(s.tick(340, { sourceIdle: true }))).toMatchObject([{ position: commitAt(303), transactions: 1 }]);
  });

  it('quietDue: nothing to wake for without a complete transaction; the gap end when the gap holds the lane back', () => {
    const s = new MachineSim(testMachine({ minCommitGapMs: 10, batchMs: 500 }));
    expect(s.m.quietDue()).toBeUndefined();
    s.feed([txn(0)[0]!, txn(0)[1]!], 0);
    expect(s.m.quietDue()).toBeUndefined(); // mid-transaction: a tick could not commit it
    s.feed([txn(0)[2]!], 1);
    expect(s.m.quietDue()).toBe(-Infinity); // never committed: at once
    s.tick(4, { sourceIdle: true });
    for (let i = 1; i <= 100; i++) s.feed(txn(i), 5);
    expect(s.m.quietDue()).toBe(4 + 10); // the floor gap after a one-transaction commit
    s.tick(14, { sourceIdle: true });
    s.feed(txn(101), 20);
    expect(s.m.quietDue()).toBe(14 + 100); // 1 ms per transaction of the last commit
  });

  it('a transaction with nothing of ours: an idle position when no batch is open, else the batch commits past it', () => {
    const s = new MachineSim(testMachine());
    s.feed(txn(0, 'app.other'), 0);
    expect(s.tick(1)).toEqual([{ type: 'advance', position: commitAt(0), time: 1000 }]);
    s.feed([...txn(1), ...txn(2, 'app.other')], 2);
    const out = s.tick(600);
    // Exact either way: the target records a position with nothing of ours between it and the last change.
    expect(commits(out)).toMatchObject([{ position: commitAt(2), ack: true }]);
    expect(s.acks).toEqual([commitAt(0), commitAt(2)]);
  });

  it('after a restart, compares positions only until the stream passes the applied position', () => {
    let compared = 0;
    const s = new MachineSim(
      testMachine({
        applied: commitAt(4),
        start: commitAt(2),
        compare: (a, b) => {
          compared++;
          return compareLsn(a as string, b as string);
        },
      }),
    );
    for (let i = 3; i < 10; i++) s.feed(txn(i), 0);
    const early = compared;
    for (let i = 10; i < 1010; i++) s.feed(txn(i), 0);
    expect(compared).toBe(early); // no comparison per transaction once past the applied position
    s.tick(600);
    expect(s.ids('app.t')).toEqual(Array.from({ length: 1005 }, (_, i) => String(i + 5))); // 3 and 4 were applied
    expect(s.acks).toEqual([commitAt(1009)]);
  });
});
