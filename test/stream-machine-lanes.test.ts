/** Apply lanes (consistency: table) and adaptive commits in the state machine, on scripted events and a scripted clock. */
import { describe, expect, it } from 'vitest';
import { StreamMachine, type MachineConfig } from '../src/core/cdc/stream-machine.js';
import { laneOf } from '../src/core/cdc/lane-layout.js';
import { compareLsn } from '../src/adapters/postgres/cdc/lsn.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';
import { MachineSim, testMachine } from './support/machine-sim.js';

function machine(over: Partial<MachineConfig> = {}) {
  return testMachine({ tables: ['app.t', 'app.u', 'app.w'], ...over });
}
/** Two lanes: t on 0, u and w on 1. */
const lanes2 = { lanes: 2, laneOf: (t: string) => (t === 'app.t' ? 0 : 1) };

const ins = (id: number, table = 'app.t'): StreamEvent => ({ kind: 'change', change: { op: 'insert', table, row: { id: String(id) } } });
const trunc = (tables: string[], cascade = false): StreamEvent => ({ kind: 'change', change: { op: 'truncate', tables, cascade, restartIdentity: false } });
const begin = (position: string, time = 1): StreamEvent => ({ kind: 'begin', position, time });
const commit = (position: string, time = 1): StreamEvent => ({ kind: 'commit', position, time });
const txn = (b: string, c: string, ...changes: StreamEvent[]) => [begin(b), ...changes, commit(c)];

describe('StreamMachine: lanes (consistency: table)', () => {
  it('routes each table to its lane; a transaction over both lands in both, and is acknowledged once both committed', () => {
    const s = new MachineSim(machine(lanes2));
    s.feed(txn('0/110', '0/120', ins(1), ins(2, 'app.u')));
    const out = s.tick(600);
    expect(out.map((a) => `${a.type}:${'lane' in a ? a.lane : 0}`)).toEqual(['apply:0', 'commit:0', 'apply:1', 'commit:1', 'advance:0']);
    const ids = out.flatMap((a) => (a.type === 'commit' ? [a.id] : []));
    expect(out.at(-1)).toEqual({ type: 'advance', position: '0/120', time: 1, after: ids });
    expect(s.committed).toEqual([{ key: 'l0', position: '0/120' }, { key: 'l1', position: '0/120' }]);
  });

  it('the acknowledged position is the prefix every lane committed: a fast lane never moves it past a slow one', () => {
    const s = new MachineSim(machine({ ...lanes2, commitChanges: 2 }));
    s.feed(txn('0/110', '0/120', ins(1), ins(2))); // lane 0 reaches commitChanges: commits now
    expect(s.acks).toEqual(['0/120']);
    s.feed(txn('0/130', '0/140', ins(10, 'app.u'))); // lane 1, under the size: stays open
    s.feed(txn('0/150', '0/160', ins(3), ins(4))); // lane 0 commits again
    expect(s.committed.map((c) => `${c.key}@${c.position}`)).toEqual(['l0@0/120', 'l0@0/160']);
    expect(s.acks).toEqual(['0/120']); // 0/140 (lane 1) is not committed: nothing after it either
    s.tick(600);
    expect(s.acks).toEqual(['0/120', '0/160']);
  });

  it('a truncate over tables of several lanes (or with cascade) runs serially: every lane commits first, then the transaction on lane 0, committed at its end', () => {
    for (const t of [trunc(['app.t', 'app.u']), trunc(['app.u'], true)]) {
      const s = new MachineSim(machine(lanes2));
      s.feed([...txn('0/110', '0/120', ins(1), ins(2, 'app.u')), begin('0/130'), ins(3, 'app.w')]);
      s.feed([t]);
      expect(s.committed).toEqual([{ key: 'l0', position: '0/120' }, { key: 'l1', position: '0/120' }]);
      s.feed([ins(4, 'app.u'), commit('0/140')]);
      expect(s.committed.at(-1)).toEqual({ key: 'l0', position: '0/140' });
      // Everything of the serial transaction went to lane 0, in source order.
      const serial = s.actions.filter((a) => a.type === 'apply').slice(-1)[0]!;
      expect(serial.type === 'apply' && serial.changes.map((c) => c.op)).toEqual(['insert', 'truncate', 'insert']);
      expect('lane' in serial).toBe(false);
      expect(s.acks.at(-1)).toBe('0/140');
    }
  });

  it('a truncate of one lane stays on that lane', () => {
    const s = new MachineSim(machine(lanes2));
    s.feed(txn('0/110', '0/120', trunc(['app.u', 'app.w'])));
    expect(s.tick(600).map((a) => `${a.type}:${'lane' in a ? a.lane : 0}`)).toEqual(['apply:1', 'commit:1', 'advance:0']);
  });

  it('a transaction larger than the hold runs serially (bounded memory)', () => {
    const s = new MachineSim(machine({ ...lanes2, applyChunk: 3 }));
    s.feed([...txn('0/110', '0/120', ins(100, 'app.u')), begin('0/130'), ins(1), ins(2, 'app.u'), ins(3)]);
    expect(s.committed).toEqual([{ key: 'l1', position: '0/120' }]); // drained before going serial
    s.feed([ins(4, 'app.u'), commit('0/140')]);
    expect(s.committed.at(-1)).toEqual({ key: 'l0', position: '0/140' });
    expect(s.ids('app.u')).toEqual(['2', '4', '100']);
  });

  it('a hook is a barrier: every lane commits, then it runs on lane 0 and its transaction commits there at its end', () => {
    const relation = { id: '1', table: 'app.u', columns: [], replicaIdentity: 'd' };
    const s = new MachineSim(machine({ ...lanes2, hooks: { relation: true, message: false } }));
    s.feed([...txn('0/110', '0/120', ins(1), ins(2, 'app.u')), begin('0/130'), ins(3, 'app.u'), { kind: 'relation', relation }]);
    const hook = s.actions.findIndex((a) => a.type === 'hook');
    expect(s.actions.slice(0, hook).filter((a) => a.type === 'commit').length).toBe(2);
    expect(s.actions[hook]).toEqual({ type: 'hook', event: { kind: 'relation', relation } });
    s.feed([ins(4, 'app.u'), commit('0/140')]);
    expect(s.committed.at(-1)).toEqual({ key: 'l0', position: '0/140' });
  });

  it('a restart skips per lane exactly what that lane committed', () => {
    const s = new MachineSim(machine({ ...lanes2, laneApplied: ['0/200', '0/100'] }));
    s.feed(txn('0/90', '0/95', ins(3), ins(4, 'app.u'))); // both have it
    s.feed(txn('0/150', '0/160', ins(1), ins(2, 'app.u'))); // lane 0 has it; lane 1 does not
    s.tick(600);
    expect(s.ids('app.t')).toEqual([]);
    expect(s.ids('app.u')).toEqual(['2']);
    expect(s.acks.at(-1)).toBe('0/160');
  });

  it('stop grace with a transaction held: lanes still commit what is complete, the held part is dropped', () => {
    const s = new MachineSim(machine(lanes2));
    s.feed([...txn('0/110', '0/120', ins(1)), begin('0/130'), ins(2, 'app.u')]);
    s.tick(0, { stopping: true });
    const out = s.tick(6000, { stopping: true });
    expect(out.map((a) => a.type)).toEqual(['apply', 'commit', 'advance', 'finish']);
    expect(s.ids('app.t')).toEqual(['1']);
    expect(s.ids('app.u')).toEqual([]);
  });

  it('laneOf is stable and spreads tables', () => {
    expect(laneOf('public.a', 4)).toBe(laneOf('public.a', 4));
    const used = new Set(Array.from({ length: 40 }, (_, i) => laneOf(`public.t${i}`, 4)));
    expect(used.size).toBe(4);
    expect(laneOf('public.a', 1)).toBe(0);
  });
});

describe('StreamMachine: adaptive commits', () => {
  it('the source goes quiet: complete transactions commit at once, not after batchMs', () => {
    const s = new MachineSim(machine());
    s.feed(txn('0/110', '0/120', ins(1)), 0);
    expect(s.tick(3)).toEqual([]); // busy (events may follow): keep grouping
    expect(s.tick(4, { sourceIdle: true }).map((a) => a.type)).toEqual(['apply', 'commit']);
    expect(s.acks).toEqual(['0/120']);
  });

  it('never mid-transaction, and a lane with a commit in flight keeps grouping (group commit)', () => {
    const s = new MachineSim(machine());
    s.feed([begin('0/110'), ins(1)], 0);
    expect(s.tick(5, { sourceIdle: true })).toEqual([]);
    s.feed([commit('0/120'), ...txn('0/130', '0/140', ins(2))], 6);
    expect(s.tick(9, { sourceIdle: true, committing: [0] })).toEqual([]);
    const out = s.tick(12, { sourceIdle: true, committing: [] });
    expect(out.filter((a) => a.type === 'commit')).toMatchObject([{ position: '0/140', transactions: 2, changes: 2 }]);
  });

  it('quiet commits of a lane are at least minCommitGapMs apart: a burst of tiny transactions still groups', () => {
    const s = new MachineSim(machine({ minCommitGapMs: 10 }));
    s.feed(txn('0/110', '0/120', ins(1)), 0);
    expect(s.tick(3, { sourceIdle: true }).filter((a) => a.type === 'commit')).toHaveLength(1);
    s.feed(txn('0/130', '0/140', ins(2)), 5);
    s.feed(txn('0/150', '0/160', ins(3)), 7);
    expect(s.tick(9, { sourceIdle: true })).toEqual([]); // 6 ms after the last commit
    expect(s.machineCommittable).toBe(true);
    expect(s.tick(13, { sourceIdle: true }).filter((a) => a.type === 'commit')).toMatchObject([{ position: '0/160', transactions: 2 }]);
  });

  it('the gap grows with the load: a burst of one-row transactions looks quiet between reads, yet groups up to batchMs', () => {
    const s = new MachineSim(machine({ minCommitGapMs: 10 }));
    const sizes: number[] = [];
    // 5000 transactions/s, the source quiet for a moment after each (what a fast reader sees).
    for (let i = 0; i < 2000; i++) {
      const t = i * 0.2;
      const p = (n: number) => `0/${(0x1000 + i * 16 + n).toString(16)}`;
      s.feed(txn(p(0), p(8), ins(i)), t);
      for (const a of s.tick(t + 0.1, { sourceIdle: true })) if (a.type === 'commit') sizes.push(a.transactions);
    }
    expect(sizes.slice(0, 3)).toEqual([1, 50, 250]); // 10 ms, then 50 ms, then 250 ms apart
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(1000); // capped by batchMs (500 ms = 2500 transactions here)
    expect(sizes.length).toBeLessThan(10);
    // Back to a slow stream: one transaction per commit again once the gap has shrunk.
    const slow = new MachineSim(machine({ minCommitGapMs: 10 }));
    const one: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = i * 10;
      const p = (n: number) => `0/${(0x1000 + i * 16 + n).toString(16)}`;
      slow.feed(txn(p(0), p(8), ...Array.from({ length: 100 }, (_, k) => ins(i * 100 + k))), t);
      for (const a of slow.tick(t + 3, { sourceIdle: true })) if (a.type === 'commit') one.push(a.transactions);
    }
    expect(one.every((n) => n === 1)).toBe(true); // 100 changes per commit: a 10 ms gap, lag stays a few ms
  });

  it('scripted clock: a transaction every 10 ms is committed within the quiet interval when idle, in large groups when busy', () => {
    const quietMs = 3;
    const run = (busy: boolean) => {
      const s = new MachineSim(machine());
      const commitLag: number[] = [];
      let inflightUntil = -1;
      for (let i = 0; i < 100; i++) {
        const t = i * 10;
        const p = (n: number) => `0/${(0x1000 + i * 16 + n).toString(16)}`;
        s.feed(txn(p(0), p(8), ins(i)), t);
        // Busy: the next transaction is already queued at the source, so it is never quiet between them.
        const out = s.tick(t + quietMs, { sourceIdle: !busy, committing: t + quietMs < inflightUntil ? [0] : [] });
        for (const a of out) if (a.type === 'commit') {
          commitLag.push(a.transactions === 1 ? quietMs : -1);
          inflightUntil = t + quietMs + 2; // a target commit takes 2 ms
        }
      }
      s.tick(5000);
      return { commits: s.committed.length, lag: commitLag, rows: s.ids('app.t').length };
    };
    const idle = run(false);
    expect(idle.rows).toBe(100);
    expect(idle.commits).toBe(100); // each transaction at once
    expect(idle.lag.every((l) => l === quietMs)).toBe(true);
    const busy = run(true);
    expect(busy.rows).toBe(100);
    expect(busy.commits).toBeLessThanOrEqual(3); // batchMs (500 ms) groups of about 50
  });
});
