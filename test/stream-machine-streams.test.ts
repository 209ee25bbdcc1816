/** Streamed in-progress transactions in the state machine, on scripted event sequences (no database). */
import { describe, expect, it } from 'vitest';
import { FerryError } from '../src/core/errors.js';
import { StreamMachine, type MachineConfig } from '../src/core/cdc/stream-machine.js';
import { compareLsn } from '../src/adapters/postgres/cdc/lsn.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';
import { MachineSim, testMachine } from './support/machine-sim.js';

function machine(over: Partial<MachineConfig> = {}) {
  return testMachine(over);
}

const ins = (id: number, xid?: string, table = 'app.t'): StreamEvent => ({ kind: 'change', change: { op: 'insert', table, row: { id: String(id) } }, ...(xid ? { xid } : {}) });
const begin = (position: string, time = 1): StreamEvent => ({ kind: 'begin', position, time });
const commit = (position: string, time = 1): StreamEvent => ({ kind: 'commit', position, time });
const start = (xid: string, first = true): StreamEvent => ({ kind: 'stream-start', xid, first });
const stop: StreamEvent = { kind: 'stream-stop' };
const scommit = (xid: string, position: string, time = 1): StreamEvent => ({ kind: 'stream-commit', xid, position, time });
const sabort = (xid: string, subxid = xid): StreamEvent => ({ kind: 'stream-abort', xid, subxid });

/** Two transactions streamed in interleaved blocks, with an ordinary one between them. */
const interleaved: StreamEvent[] = [
  start('700'), ins(1, '700'), ins(2, '700'), stop,
  begin('0/110'), ins(50), commit('0/120'),
  start('800'), ins(10, '800'), stop,
  start('700', false), ins(3, '700'), stop,
  scommit('800', '0/200'),
  begin('0/210'), ins(51), commit('0/220'),
  scommit('700', '0/300'),
];

describe('StreamMachine: streamed transactions', () => {
  it('interleaved streamed transactions each land whole, at their commit, after the ordinary batch before them', () => {
    const s = new MachineSim(machine());
    const seen: string[][] = [];
    for (const e of interleaved) {
      s.feed([e]);
      seen.push(s.ids('app.t'));
    }
    // Nothing of 700 or 800 is visible before its commit; each appears whole.
    const at = (xid: string) => interleaved.findIndex((e) => e.kind === 'stream-commit' && e.xid === xid);
    expect(seen[at('800') - 1]).toEqual(['50']);
    expect(seen[at('800')]).toEqual(['10', '50']);
    // 51 waits in the ordinary batch (younger than batchMs): 700's commit first commits it, then 700.
    expect(seen[at('700') - 1]).toEqual(['10', '50']);
    expect(s.ids('app.t')).toEqual(['1', '2', '3', '10', '50', '51']);
    // The ordinary transaction's batch commits before 800's block applies (drain), and each streamed one on its own batch.
    expect(s.committed).toEqual([
      { key: 'l0', position: '0/120' },
      { key: 'x800', position: '0/200' },
      { key: 'l0', position: '0/220' },
      { key: 'x700', position: '0/300' },
    ]);
    // Savepoint-free (no subtransactions), one batch each, and all closed at the end.
    expect(s.actions.filter((a) => a.type === 'savepoint')).toEqual([]);
    expect(s.openBatches).toEqual([]);
    expect(s.acks).toEqual(['0/120', '0/200', '0/220', '0/300']);
  });

  it('an aborted streamed transaction leaves nothing, and its batch is rolled back', () => {
    const s = new MachineSim(machine());
    s.feed([start('700'), ins(1, '700'), ins(2, '700'), stop, begin('0/110'), ins(50), commit('0/120'), start('700', false), ins(3, '700'), stop, sabort('700')]);
    s.tick(600);
    expect(s.ids('app.t')).toEqual(['50']);
    expect(s.actions.filter((a) => a.type === 'rollback')).toEqual([{ type: 'rollback', xid: '700' }]);
    expect(s.openBatches).toEqual([]);
    expect(s.m.openStreams).toBe(0);
  });

  it('a subtransaction abort undoes it and the subtransactions begun after it, and nothing else', () => {
    const s = new MachineSim(machine());
    s.feed([
      start('700'), ins(1, '700'), ins(2, '701'), ins(3, '702'), ins(4, '700'), stop,
      sabort('700', '702'), // only 702 (and nothing after it but 4, which came from 700 after 702 began)
      sabort('700', '701'),
      sabort('700', '702'), // again (its savepoint is gone): nothing
      start('700', false), ins(5, '703'), ins(6, '700'), stop,
      scommit('700', '0/300'),
    ]);
    const names = s.actions.flatMap((a) => (a.type === 'savepoint' || a.type === 'rollbackTo' ? [`${a.type}:${a.name}`] : []));
    expect(names).toEqual(['savepoint:ferry_sx_701', 'savepoint:ferry_sx_702', 'rollbackTo:ferry_sx_702', 'rollbackTo:ferry_sx_701', 'savepoint:ferry_sx_703']);
    // ROLLBACK TO 701 undoes what followed 701's first change: 2, 3 and 4 (as the source's abort of 701 does).
    expect(s.ids('app.t')).toEqual(['1', '5', '6']);
  });

  it('a restart from an older checkpoint converges: a streamed transaction the target has is rolled back, one it lacks lands whole', () => {
    // First run: 800 and the ordinary one commit; 700 is cut off mid-stream; the checkpoint stayed at 0/100.
    const first = new MachineSim(machine());
    first.feed(interleaved.slice(0, interleaved.findIndex((e) => e.kind === 'commit' && e.position === '0/220') + 1));
    first.tick(600);
    expect(first.committed.map((c) => c.position)).toEqual(['0/120', '0/200', '0/220']);
    // Restart: the target's applied position is 0/220, the checkpoint is older; the source resends from there.
    const again = new MachineSim(machine({ applied: '0/220', start: '0/100' }));
    for (const [t, ids] of first.rows) again.rows.set(t, new Map(ids));
    again.feed(interleaved);
    expect(again.ids('app.t')).toEqual(['1', '2', '3', '10', '50', '51']);
    // 800 (commit 0/200 <= 0/220) is not committed again; only 700 commits.
    expect(again.committed).toEqual([{ key: 'x700', position: '0/300' }]);
    expect(again.actions.filter((a) => a.type === 'rollback')).toEqual([{ type: 'rollback', xid: '800' }]);
    expect(again.acks.at(-1)).toBe('0/300');
    expect(again.openBatches).toEqual([]);
  });

  it('acknowledgements: never past an uncommitted ordinary transaction; past an open streamed one (the source resends it whole); never from inside a block', () => {
    const s = new MachineSim(machine());
    s.feed([begin('0/110'), ins(50), commit('0/120'), start('700'), ins(1, '700'), { kind: 'keepalive', position: '0/900', time: 9 }, stop]);
    // The ordinary batch was committed (and acknowledged) before the block; the keepalive inside the block is ignored.
    expect(s.acks).toEqual(['0/120']);
    s.tick(10);
    expect(s.acks).toEqual(['0/120']);
    s.feed([{ kind: 'heartbeat', position: '0/150', time: 9 }]);
    s.tick(20);
    expect(s.acks).toEqual(['0/120', '0/150']); // 700 is open: its commit comes after 0/150, so it will be resent
    s.feed([begin('0/160'), ins(51), commit('0/170'), { kind: 'keepalive', position: '0/180', time: 9 }]);
    s.tick(30);
    expect(s.acks).toEqual(['0/120', '0/150']); // 0/170 is not committed yet: neither it nor the keepalive after it
    s.tick(700);
    expect(s.acks).toEqual(['0/120', '0/150', '0/180']);
    s.feed([scommit('700', '0/300')]);
    expect(s.acks.at(-1)).toBe('0/300');
    // Every acknowledgement is at or before a position something committed at (or an idle one after it).
    expect(s.committed.map((c) => c.position)).toEqual(['0/120', '0/170', '0/300']);
  });

  it('bounded: beyond maxStreams a transaction is held in memory, then gets the batch that closes; past the memory bound it fails with advice', () => {
    const s = new MachineSim(machine({ maxStreams: 1 }));
    s.feed([start('700'), ins(1, '700'), stop, start('800'), ins(10, '800'), ins(11, '801'), stop]);
    expect(s.actions.filter((a) => 'xid' in a && a.xid === '800')).toEqual([]);
    s.feed([scommit('700', '0/200')]);
    const after700 = s.actions.slice(s.actions.findIndex((a) => a.type === 'commit'));
    expect(after700.map((a) => `${a.type}:${'xid' in a ? a.xid : ''}`)).toEqual(['commit:700', 'apply:800', 'savepoint:800', 'apply:800']);
    s.feed([start('800', false), ins(12, '800'), stop, scommit('800', '0/300')]);
    expect(s.ids('app.t')).toEqual(['1', '10', '11', '12']);

    // A held one that commits while the others are still open commits at once (on the spare connection).
    const h = new MachineSim(machine({ maxStreams: 1 }));
    h.feed([start('700'), ins(1, '700'), stop, start('800'), ins(10, '800'), stop, scommit('800', '0/150')]);
    expect(h.ids('app.t')).toEqual(['10']);
    expect(h.acks).toEqual(['0/150']); // 700 is still open, and its commit is later: the source resends it whole
    h.feed([scommit('700', '0/200')]);
    expect(h.ids('app.t')).toEqual(['1', '10']);

    const big = machine({ maxStreams: 1, maxHeldBytes: 2000, applyChunk: 10 });
    big.event(start('700'), 0);
    big.event(start('800'), 0);
    expect(() => {
      for (let i = 0; i < 100; i++) big.event(ins(i, '800'), 0);
    }).toThrow(FerryError);
  });

  it('stop: lanes commit, open streamed batches are rolled back (their transactions are resent), then finish', () => {
    const s = new MachineSim(machine());
    s.feed([start('700'), ins(1, '700'), stop, begin('0/110'), ins(50), commit('0/120')]);
    const out = s.tick(10, { stopping: true });
    expect(out.map((a) => a.type)).toEqual(['apply', 'commit', 'rollback', 'finish']);
    expect(s.ids('app.t')).toEqual(['50']);
  });

  it('a streamed block of a transaction whose first block was never seen is refused (it would apply half of it)', () => {
    const m = machine();
    expect(() => m.event(start('700', false), 0)).toThrow(/first block/);
  });
});
