/** The streamer's state machine on scripted event sequences: no database, every decision visible as an action. */
import { testMachine } from './support/machine-sim.js';
import { describe, expect, it } from 'vitest';
import { StreamMachine, type MachineConfig, type StreamAction } from '../src/core/cdc/stream-machine.js';
import { compareLsn } from '../src/adapters/postgres/cdc/lsn.js';
import type { Change, StreamEvent } from '../src/core/ports/change-source.js';

function machine(over: Partial<MachineConfig> = {}) {
  return testMachine(over);
}

const ins = (id: number, table = 'app.t'): StreamEvent => ({ kind: 'change', change: { op: 'insert', table, row: { id: String(id) } } });
const begin = (position: string, time = 1): StreamEvent => ({ kind: 'begin', position, time });
const commit = (position: string, time = 1): StreamEvent => ({ kind: 'commit', position, time });
const types = (a: StreamAction[]) => a.map((x) => x.type);
const applied = (a: StreamAction[]) =>
  a.flatMap((x) => (x.type === 'apply' ? x.changes.map((c: Change) => (c.op === 'insert' ? `${c.table}:${c.row.id}` : c.op)) : []));

/** Feed events at `now`, then collect everything. */
function feed(m: StreamMachine, events: StreamEvent[], now = 0): StreamAction[] {
  return events.flatMap((e) => m.event(e, now));
}

describe('StreamMachine', () => {
  it('skips exactly the transactions the target already has after a restart (commit before the applied position)', () => {
    const m = machine({ applied: '0/200', start: '0/180' });
    const out = [
      ...feed(m, [begin('0/150'), ins(1), commit('0/180')]), // already applied: its commit record starts before 0/200
      ...feed(m, [begin('0/200'), ins(2), commit('0/230')]), // starts exactly at the applied position: new
      ...m.tick({ now: 1000, stopping: false, laneIdle: true }),
    ];
    expect(applied(out)).toEqual(['app.t:2']);
    expect(out.filter((a) => a.type === 'commit')).toMatchObject([{ position: '0/230', changes: 1, transactions: 1 }]);
  });

  it('batches whole transactions by time and never splits one across commits', () => {
    const m = machine({ applyChunk: 2 });
    const out = feed(m, [begin('0/110'), ins(1), ins(2), ins(3), commit('0/120'), begin('0/130'), ins(4), commit('0/140')], 0);
    expect(types(out)).toEqual(['apply', 'apply']); // chunks of two, no commit yet (the batch is younger than batchMs)
    const later = m.tick({ now: 600, stopping: false, laneIdle: true });
    expect(types(later)).toEqual(['commit']);
    expect(applied([...out, ...later])).toEqual(['app.t:1', 'app.t:2', 'app.t:3', 'app.t:4']);
    expect(later[0]).toMatchObject({ position: '0/140', transactions: 2, changes: 4 });
  });

  it('a heartbeat while a batch is open is confirmed only after that batch commits, in lane order', () => {
    const m = machine();
    feed(m, [begin('0/110'), ins(1), commit('0/120'), { kind: 'heartbeat', position: '0/130', time: 5 }], 0);
    expect(m.tick({ now: 100, stopping: false, laneIdle: false })).toEqual([]);
    const out = m.tick({ now: 600, stopping: false, laneIdle: false });
    expect(out.map((a) => [a.type, 'position' in a ? a.position : ''])).toEqual([
      ['apply', ''],
      ['commit', '0/120'],
      ['advance', '0/130'],
    ]);
  });

  it('never uses a heartbeat or keepalive received inside a transaction (its position can be past that commit)', () => {
    const m = machine();
    feed(m, [begin('0/110'), ins(1), { kind: 'keepalive', position: '0/900', time: 5 }, { kind: 'heartbeat', position: '0/800', time: 5 }]);
    expect(m.tick({ now: 600, stopping: false, laneIdle: true })).toEqual([]);
    const out = [...feed(m, [commit('0/120')], 700), ...m.tick({ now: 1300, stopping: false, laneIdle: true })];
    expect(out.filter((a) => a.type === 'advance')).toEqual([]);
    expect(out.filter((a) => a.type === 'commit')).toMatchObject([{ position: '0/120' }]);
  });

  it('confirms a keepalive position only when idle, exactly as sent', () => {
    const m = machine();
    feed(m, [{ kind: 'keepalive', position: '0/150', time: 7 }]);
    expect(m.tick({ now: 100, stopping: false, laneIdle: true })).toEqual([{ type: 'advance', position: '0/150', time: 7 }]);
    // Not again for the same position; and not while a batch is open.
    expect(m.tick({ now: 200, stopping: false, laneIdle: true })).toEqual([]);
    feed(m, [begin('0/160'), ins(1), commit('0/170'), { kind: 'keepalive', position: '0/180', time: 8 }], 300);
    expect(m.tick({ now: 400, stopping: false, laneIdle: true })).toEqual([]);
    expect(types(m.tick({ now: 900, stopping: false, laneIdle: true }))).toEqual(['apply', 'commit', 'advance']);
  });

  it('a transaction of tables outside the flow only moves the position', () => {
    const m = machine();
    const out = [...feed(m, [begin('0/110'), ins(1, 'app.other'), commit('0/120')]), ...m.tick({ now: 10, stopping: false, laneIdle: true })];
    expect(out).toEqual([{ type: 'advance', position: '0/120', time: 1 }]);
  });

  it('stop: commits at the transaction boundary, then finishes', () => {
    const m = machine();
    feed(m, [begin('0/110'), ins(1), commit('0/120')], 0);
    expect(types(m.tick({ now: 10, stopping: true, laneIdle: false }))).toEqual(['apply', 'commit', 'finish']);
    expect(m.isFinished).toBe(true);
    expect(feed(m, [begin('0/130'), ins(2), commit('0/140')])).toEqual([]);
  });

  it('stop grace: inside a transaction it waits, then rolls the open batch back and finishes', () => {
    const m = machine({ stopGraceMs: 5000 });
    feed(m, [begin('0/110'), ins(1)], 0);
    expect(m.tick({ now: 1000, stopping: true, laneIdle: true })).toEqual([]);
    expect(m.tick({ now: 5500, stopping: true, laneIdle: true })).toEqual([]);
    expect(types(m.tick({ now: 6100, stopping: true, laneIdle: true }))).toEqual(['rollback', 'finish']);
  });

  it('stop grace: a transaction that ends within the grace is committed', () => {
    const m = machine();
    feed(m, [begin('0/110'), ins(1)], 0);
    expect(m.tick({ now: 1000, stopping: true, laneIdle: true })).toEqual([]);
    expect(types(feed(m, [commit('0/120')], 2000))).toEqual(['apply', 'commit']);
    expect(types(m.tick({ now: 2100, stopping: true, laneIdle: true }))).toEqual(['finish']);
  });

  it('drain: finishes once the lane is idle and the acknowledged position reached the drain point', () => {
    const m = machine();
    feed(m, [begin('0/110'), ins(1), commit('0/300')], 0);
    expect(types(m.tick({ now: 600, stopping: false, drainTo: '0/300', laneIdle: false }))).toEqual(['apply', 'commit']);
    expect(m.tick({ now: 700, stopping: false, drainTo: '0/300', laneIdle: false })).toEqual([]);
    expect(m.tick({ now: 800, stopping: false, drainTo: '0/300', laneIdle: true })).toEqual([]); // not acknowledged yet
    m.acknowledged('0/300');
    expect(types(m.tick({ now: 900, stopping: false, drainTo: '0/300', laneIdle: true }))).toEqual(['finish']);
  });

  it('a Relation change mid-transaction: earlier changes are applied first, the hook runs, its tables and pauses hold for what follows', () => {
    const m = machine({ hooks: { relation: true, message: false } });
    const relation = { id: '16400', table: 'app.new', columns: [{ name: 'id', typeOid: 23, typeMod: -1, key: true }], replicaIdentity: 'd' };
    const out1 = feed(m, [begin('0/110'), ins(1), { kind: 'relation', relation }]);
    expect(out1.map((a) => a.type)).toEqual(['apply', 'hook']);
    expect(applied(out1)).toEqual(['app.t:1']);
    expect(out1[1]).toEqual({ type: 'hook', event: { kind: 'relation', relation } });
    m.hookDone({ tables: ['app.new'], pause: [{ table: 'app.u', reason: 'column type changed' }] });
    const out2 = [...feed(m, [ins(2, 'app.new'), ins(3, 'app.u'), ins(4, 'app.u'), ins(5), commit('0/120')]), ...m.tick({ now: 600, stopping: false, laneIdle: true })];
    expect(applied(out2)).toEqual(['app.new:2', 'app.t:5']);
    expect(out2.filter((a) => a.type === 'paused')).toEqual([{ type: 'paused', table: 'app.u', reason: 'column type changed' }]);
    expect(out2.at(-1)).toMatchObject({ type: 'commit', position: '0/120', changes: 3 });
  });

  it('a hook in a transaction with no changes of ours still commits its batch (at that commit)', () => {
    const m = machine({ hooks: { relation: true, message: false } });
    const relation = { id: '1', table: 'app.t', columns: [], replicaIdentity: 'd' };
    feed(m, [begin('0/110'), { kind: 'relation', relation }, commit('0/120')]);
    expect(m.tick({ now: 600, stopping: false, laneIdle: true })).toMatchObject([{ type: 'commit', position: '0/120', changes: 0 }]);
  });

  it('a non-transactional message hook commits the batch at the message position', () => {
    const m = machine({ hooks: { relation: false, message: true } });
    const out = feed(m, [{ kind: 'message', prefix: 'ddl', content: 'x', position: '0/150', transactional: false }]);
    expect(out).toEqual([{ type: 'hook', event: { kind: 'message', prefix: 'ddl', content: 'x', position: '0/150' } }]);
    expect(m.tick({ now: 600, stopping: false, laneIdle: true })).toMatchObject([{ type: 'commit', position: '0/150' }]);
  });

  it('reports the oldest open transaction for lag until it is scheduled for commit', () => {
    const m = machine();
    feed(m, [begin('0/110', 1000), ins(1)], 0);
    expect(m.openSince).toBe(1000);
    feed(m, [commit('0/120', 1000), begin('0/130', 2000), ins(2)], 10);
    expect(m.openSince).toBe(1000);
    feed(m, [commit('0/140', 2000)], 20);
    m.tick({ now: 600, stopping: false, laneIdle: true });
    expect(m.openSince).toBeUndefined();
  });
});
