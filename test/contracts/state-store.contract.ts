/**
 * The StateStore contract, run against every adapter. Each test gets a fresh, empty store from `make`.
 *
 * Where the port's comments leave room, this suite pins one reading so that all adapters behave alike:
 * - only `done` is final; a `failed` job can be started again (a resume may retry it);
 * - recordProgress/finishJob carry totals for the job, not increments (a retried call must not double-count);
 * - writes to an unknown job change nothing and create nothing; startJob returns false for it;
 * - updateFlow of an unknown flow rejects; `error: undefined` present in the patch clears the error; it never
 *   touches `ranges` (not patchable);
 * - a job that stops running (done, failed, back to pending) holds no lease;
 * - listJobs returns jobs ordered by id.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FlowRecord, JobRecord, JobStatus, Json, TableSchema } from '../../src/core/model.js';
import type { StateStore } from '../../src/core/ports/state-store.js';

/** Values a careless store would damage: big integers, float precision, unicode, escapes, empty containers. */
export const TRICKY: Json = {
  big: '9223372036854775807',
  negBig: '-9223372036854775808',
  maxSafe: 9007199254740991,
  float: 0.30000000000000004,
  huge: 1e21,
  text: 'Grüße 日本語 🚀 "quoted" \\ back\nline\ttab \u0000 nul \ud800 lone',
  nested: { a: [1, 'two', null, true, false, { deep: [[], {}] }], 'ключ ✓': 'значение' },
  empty: {},
  none: null,
};
const BIG_CURSOR: Json = '9223372036854775807';
const ARRAY_RANGE: Json = [['9223372036854775806'], ['9223372036854775807'], { lower: 'ä', upper: '🚀' }];

export function table(name: string, extra: Json = TRICKY): TableSchema {
  return {
    source: { schema: 'public', name },
    target: { schema: 'Ziel', name: `${name}_ü` },
    columns: [
      { name: 'id', type: 'numeric(38,0)', nullable: false, identity: 'always' },
      { name: 'mood', type: 'public.mood', typeRef: { labels: ['sad', '😀'] }, nullable: true, default: "'ok'" },
    ],
    primaryKey: ['id'],
    estimatedRows: 1_000_000,
    estimatedBytes: 123_456_789,
    extra,
  };
}

export function flowRecord(id: string, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    id,
    phase: 'planned',
    summary: { source: 'postgres://…', tables: ['public.a'], tricky: TRICKY },
    tables: [table('a'), table('b', [1, '2', { three: 3 }])],
    ranges: {
      'public.a': [
        { range: { lower: null, upper: ['9223372036854775807'] }, label: 'id < 9223372036854775807', estimatedRows: 7 },
        { range: ARRAY_RANGE, label: 'ä…🚀', estimatedRows: 0 },
      ],
      'public.b': [{ range: TRICKY, label: 'all of b', estimatedRows: 1 }],
    },
    createdAt: 1000,
    updatedAt: 1000,
    ...over,
  };
}

export function jobRecord(flow: string, id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    flow,
    id,
    table: 'public.a',
    range: { lower: ['1'], upper: ['250001'], tricky: TRICKY },
    label: `id in [1, 250001) ${id}`,
    estimatedRows: 250_000,
    status: 'pending',
    cursor: null,
    attempts: 0,
    rows: 0,
    bytes: 0,
    updatedAt: 1,
    ...over,
  };
}

/** Equal, and byte-for-byte the same JSON (key order and number formatting included). */
function expectSameJson(actual: unknown, expected: Json): void {
  expect(actual).toEqual(expected);
  expect(JSON.stringify(actual)).toBe(JSON.stringify(expected));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function stateStoreContract(
  name: string,
  make: () => Promise<{ store: StateStore; cleanup(): Promise<void> }>,
): void {
  describe(`StateStore contract: ${name}`, () => {
    let store: StateStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(() => cleanup());

    const later = () => Date.now() + 60_000;
    /** Start a job of flow `f` under a lease that will not expire during the test. */
    const start = (id: string, owner = 'w') => store.startJob('f', id, owner, later());
    const ids = async (flow: string, status?: JobStatus) => (await store.listJobs(flow, status)).map((j) => j.id);

    describe('flows', () => {
      it('getFlow returns undefined for an unknown flow', async () => {
        expect(await store.getFlow('nope')).toBeUndefined();
      });

      it('createFlow stores the flow and returns it; summary, tables and ranges round-trip exactly', async () => {
        const f = flowRecord('f1');
        expect(await store.createFlow(f)).toEqual(f);
        const got = await store.getFlow('f1');
        expect(got).toEqual(f);
        expectSameJson(got!.summary, f.summary);
        expectSameJson(got!.tables as unknown as Json, f.tables as unknown as Json);
        expectSameJson(got!.ranges as unknown as Json, f.ranges as unknown as Json);
      });

      it('createFlow twice returns the existing flow and leaves it unchanged (existing wins)', async () => {
        const first = flowRecord('f', { phase: 'snapshot', summary: { v: 1 } });
        await store.createFlow(first);
        const second = flowRecord('f', {
          summary: { v: 2 },
          tables: [table('other')],
          ranges: { 'public.other': [] },
          createdAt: 5,
          error: 'x',
        });
        expect(await store.createFlow(second)).toEqual(first);
        expect(await store.getFlow('f')).toEqual(first);
      });

      it('concurrent createFlow calls all return the one flow that was stored', async () => {
        const candidates = [1, 2, 3, 4].map((v) => flowRecord('f', { summary: { v }, createdAt: v }));
        const results = await Promise.all(candidates.map((f) => store.createFlow(f)));
        const stored = await store.getFlow('f');
        expect(candidates).toContainEqual(stored);
        for (const r of results) expect(r).toEqual(stored);
      });

      it('keeps flows apart by id, error included', async () => {
        const a = flowRecord('a');
        const b = flowRecord('b', { phase: 'failed', error: 'kaputt ✗', tables: [], ranges: {} });
        await store.createFlow(a);
        await store.createFlow(b);
        expect(await store.getFlow('a')).toEqual(a);
        expect(await store.getFlow('b')).toEqual(b);
      });

      it('updateFlow changes only the patched fields and bumps updatedAt', async () => {
        const f = flowRecord('f');
        await store.createFlow(f);
        await store.updateFlow('f', { phase: 'snapshot' });
        const got = await store.getFlow('f');
        expect(got).toEqual({ ...f, phase: 'snapshot', updatedAt: got!.updatedAt });
        expect(got!.updatedAt).toBeGreaterThan(f.updatedAt);
      });

      it('updateFlow sets the error, replaces the tables, and clears the error when given undefined', async () => {
        await store.createFlow(flowRecord('f'));
        await store.updateFlow('f', { phase: 'failed', error: 'boom ü' });
        expect(await store.getFlow('f')).toMatchObject({ phase: 'failed', error: 'boom ü' });

        const tables = [table('x', { replaced: ARRAY_RANGE })];
        await store.updateFlow('f', { tables });
        const mid = await store.getFlow('f');
        expectSameJson(mid!.tables as unknown as Json, tables as unknown as Json);
        expect(mid).toMatchObject({ phase: 'failed', error: 'boom ü' });

        await store.updateFlow('f', { phase: 'snapshot', error: undefined });
        const end = await store.getFlow('f');
        expect(end!.error).toBeUndefined();
        expect(end!.phase).toBe('snapshot');
        expect(end!.tables).toEqual(tables);
        expect(end!.ranges).toEqual(flowRecord('f').ranges);
      });

      it('updateFlow of an unknown flow rejects and creates nothing', async () => {
        await expect(store.updateFlow('ghost', { phase: 'done' })).rejects.toThrow();
        expect(await store.getFlow('ghost')).toBeUndefined();
      });
    });

    describe('jobs', () => {
      it('getJob returns undefined for an unknown job', async () => {
        await store.addJobs([jobRecord('f', 'j1')]);
        expect(await store.getJob('f', 'j2')).toBeUndefined();
        expect(await store.getJob('g', 'j1')).toBeUndefined();
      });

      it('addJobs stores jobs; range and cursor round-trip exactly', async () => {
        const jobs = [
          jobRecord('f', 'j1', { cursor: BIG_CURSOR }),
          jobRecord('f', 'j2', { range: ARRAY_RANGE, cursor: TRICKY, table: 'Ä.ö' }),
          jobRecord('f', 'j3', { status: 'failed', error: 'old ✗', leaseOwner: 'w', leaseUntil: 5, attempts: 3 }),
        ];
        await store.addJobs(jobs);
        for (const j of jobs) {
          const got = await store.getJob('f', j.id);
          expect(got).toEqual(j);
          expectSameJson(got!.range, j.range);
          expectSameJson(got!.cursor, j.cursor);
        }
      });

      it('addJobs is idempotent: an existing job is left as it is, new ones are added', async () => {
        const original = jobRecord('f', 'j1');
        await store.addJobs([original]);
        const changed = { ...original, status: 'done' as const, label: 'changed', attempts: 7, rows: 99, range: 1 };
        await store.addJobs([changed, jobRecord('f', 'j2')]);
        expect(await store.getJob('f', 'j1')).toEqual(original);
        expect(await ids('f')).toEqual(['j1', 'j2']);
      });

      it('addJobs of no jobs is a no-op', async () => {
        await expect(store.addJobs([])).resolves.toBeUndefined();
        expect(await store.listJobs('f')).toEqual([]);
      });

      it('jobs with the same id in two flows are separate', async () => {
        await store.addJobs([jobRecord('a', 'j1', { table: 't.one' }), jobRecord('b', 'j1', { table: 't.two' })]);
        expect((await store.getJob('a', 'j1'))!.table).toBe('t.one');
        expect((await store.getJob('b', 'j1'))!.table).toBe('t.two');
        await store.startJob('a', 'j1', 'w', later());
        expect((await store.getJob('b', 'j1'))!.status).toBe('pending');
      });

      it('listJobs without a status returns every job of the flow, ordered by id', async () => {
        const jobs = ['j03', 'j01', 'j02'].map((id) => jobRecord('f', id));
        await store.addJobs([...jobs, jobRecord('other', 'j00')]);
        const listed = await store.listJobs('f');
        expect(listed.map((j) => j.id)).toEqual(['j01', 'j02', 'j03']);
        expect(listed).toEqual([jobs[1], jobs[2], jobs[0]]);
      });

      it('listJobs filters by status', async () => {
        await store.addJobs([1, 2, 3, 4, 5].map((i) => jobRecord('f', `j${i}`)).concat(jobRecord('g', 'j9')));
        await start('j2');
        await store.finishJob('f', 'j3', { cursor: null, rows: 1, bytes: 1 });
        await store.failJob('f', 'j4', 'bad', true);
        expect(await ids('f', 'pending')).toEqual(['j1', 'j5']);
        expect(await ids('f', 'running')).toEqual(['j2']);
        expect(await ids('f', 'done')).toEqual(['j3']);
        expect(await ids('f', 'failed')).toEqual(['j4']);
        const [running] = await store.listJobs('f', 'running');
        expect(running).toMatchObject({ status: 'running', leaseOwner: 'w', attempts: 1 });
        expectSameJson(running!.range, jobRecord('f', 'j2').range);
        expect(await store.listJobs('g', 'running')).toEqual([]);
      });

      it('listJobs of an unknown flow is empty', async () => {
        await store.addJobs([jobRecord('f', 'j1')]);
        expect(await store.listJobs('nope')).toEqual([]);
        expect(await store.listJobs('nope', 'pending')).toEqual([]);
      });

      it('countJobs aggregates per table', async () => {
        const until = later();
        await store.addJobs([
          jobRecord('f', 'a', { table: 't1', estimatedRows: 100 }),
          jobRecord('f', 'b', { table: 't1', estimatedRows: 200 }),
          jobRecord('f', 'c', { table: 't1', estimatedRows: 250 }),
          jobRecord('f', 'd', { table: 't2', estimatedRows: 50 }),
          jobRecord('f', 'e', { table: 't2', estimatedRows: 40 }),
          jobRecord('other', 'x', { table: 't1', estimatedRows: 1_000, rows: 1_000 }),
        ]);
        await start('b');
        await store.recordProgress('f', 'b', { cursor: ['10'], rows: 10, bytes: 1_000 }, until);
        await start('c');
        await store.finishJob('f', 'c', { cursor: null, rows: 300, bytes: 3_000 });
        await start('d');
        await store.recordProgress('f', 'd', { cursor: ['5'], rows: 5, bytes: 7 }, until);
        await store.failJob('f', 'd', 'bad', true);
        expect(await store.countJobs('f')).toEqual({
          t1: { total: 3, pending: 1, running: 1, done: 1, failed: 0, rows: 310, bytes: 4_000, estimatedRows: 550 },
          t2: { total: 2, pending: 1, running: 0, done: 0, failed: 1, rows: 5, bytes: 7, estimatedRows: 90 },
        });
      });

      it('countJobs of a flow without jobs is empty', async () => {
        expect(await store.countJobs('nope')).toEqual({});
      });
    });

    describe('job lifecycle', () => {
      it('startJob marks the job running, sets the lease and counts each attempt', async () => {
        const j = jobRecord('f', 'j', { cursor: BIG_CURSOR });
        await store.addJobs([j]);
        const until1 = later();
        expect(await store.startJob('f', 'j', 'w1', until1)).toBe(true);
        const first = await store.getJob('f', 'j');
        expect(first).toMatchObject({ status: 'running', leaseOwner: 'w1', leaseUntil: until1, attempts: 1 });
        expect(first!.updatedAt).toBeGreaterThan(j.updatedAt);
        expectSameJson(first!.cursor, BIG_CURSOR);
        expectSameJson(first!.range, j.range);

        expect(await store.startJob('f', 'j', 'w2', until1 + 1)).toBe(true);
        const second = { status: 'running', leaseOwner: 'w2', leaseUntil: until1 + 1, attempts: 2 };
        expect(await store.getJob('f', 'j')).toMatchObject(second);
      });

      it('startJob of an unknown job returns false and creates nothing', async () => {
        expect(await start('ghost')).toBe(false);
        expect(await store.getJob('f', 'ghost')).toBeUndefined();
      });

      it('recordProgress stores cursor, rows and bytes as totals and extends the lease', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        const until = later();
        await store.startJob('f', 'j', 'w1', until);
        await store.recordProgress('f', 'j', { cursor: TRICKY, rows: 10, bytes: 100 }, until + 5);
        const got = await store.getJob('f', 'j');
        expect(got).toMatchObject({ status: 'running', leaseOwner: 'w1', leaseUntil: until + 5, attempts: 1 });
        expect([got!.rows, got!.bytes]).toEqual([10, 100]);
        expectSameJson(got!.cursor, TRICKY);

        await store.recordProgress('f', 'j', { cursor: ARRAY_RANGE, rows: 25, bytes: 250 }, until + 9);
        const again = await store.getJob('f', 'j');
        expect(again).toMatchObject({ rows: 25, bytes: 250, leaseUntil: until + 9, attempts: 1 });
        expectSameJson(again!.cursor, ARRAY_RANGE);
      });

      it('finishJob marks the job done with its final progress and releases the lease', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        await start('j');
        await store.finishJob('f', 'j', { cursor: BIG_CURSOR, rows: 500, bytes: 5_000 });
        const got = await store.getJob('f', 'j');
        expect(got).toMatchObject({ status: 'done', rows: 500, bytes: 5_000, attempts: 1 });
        expectSameJson(got!.cursor, BIG_CURSOR);
        expect(got!.leaseOwner).toBeUndefined();
        expect(got!.leaseUntil).toBeUndefined();
      });

      it('done is final: later failJob, startJob, recordProgress and finishJob leave it as it is', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        await start('j');
        await store.finishJob('f', 'j', { cursor: ['end'], rows: 500, bytes: 5_000 });
        const done = await store.getJob('f', 'j');

        await store.failJob('f', 'j', 'late failure', true);
        await store.failJob('f', 'j', 'late retry', false);
        expect(await start('j', 'w2')).toBe(false);
        await store.recordProgress('f', 'j', { cursor: ['stale'], rows: 1, bytes: 1 }, later());
        await store.finishJob('f', 'j', { cursor: ['other'], rows: 7, bytes: 7 });
        expect(await store.getJob('f', 'j')).toEqual(done);
        expect(await ids('f', 'done')).toEqual(['j']);
      });

      it('failJob not final puts the job back to pending, keeping error, attempts and cursor', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        const until = later();
        await store.startJob('f', 'j', 'w', until);
        await store.recordProgress('f', 'j', { cursor: BIG_CURSOR, rows: 10, bytes: 20 }, until);
        await store.failJob('f', 'j', 'timeout ⏱', false);
        const got = await store.getJob('f', 'j');
        expect(got).toMatchObject({ status: 'pending', error: 'timeout ⏱', attempts: 1, rows: 10, bytes: 20 });
        expectSameJson(got!.cursor, BIG_CURSOR);
        expect(got!.leaseOwner).toBeUndefined();
        expect(await ids('f', 'pending')).toEqual(['j']);
        expect(await store.listJobs('f', 'running')).toEqual([]);

        expect(await store.startJob('f', 'j', 'w2', until)).toBe(true);
        expect(await store.getJob('f', 'j')).toMatchObject({ status: 'running', attempts: 2, leaseOwner: 'w2' });
      });

      it('failJob final marks the job failed with its error', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        await start('j');
        await store.failJob('f', 'j', 'no such column ✗', true);
        const got = await store.getJob('f', 'j');
        expect(got).toMatchObject({ status: 'failed', error: 'no such column ✗', attempts: 1 });
        expect(got!.leaseOwner).toBeUndefined();
        expect(await ids('f', 'failed')).toEqual(['j']);
      });

      it('only done is final: a failed job can be started again', async () => {
        await store.addJobs([jobRecord('f', 'j')]);
        await start('j');
        await store.failJob('f', 'j', 'bad', true);
        expect(await start('j', 'w2')).toBe(true);
        expect(await store.getJob('f', 'j')).toMatchObject({ status: 'running', attempts: 2 });
      });

      it('progress, finish and failure of an unknown job create nothing', async () => {
        await store.recordProgress('f', 'ghost', { cursor: null, rows: 1, bytes: 1 }, Date.now());
        await store.finishJob('f', 'ghost', { cursor: null, rows: 1, bytes: 1 });
        await store.failJob('f', 'ghost', 'x', false);
        await store.failJob('f', 'ghost', 'x', true);
        expect(await store.getJob('f', 'ghost')).toBeUndefined();
        expect(await store.listJobs('f')).toEqual([]);
      });
    });

    describe('checkpoints', () => {
      it('getCheckpoint returns undefined when none was put', async () => {
        await store.putCheckpoint('f', 'a', 1);
        expect(await store.getCheckpoint('f', 'b')).toBeUndefined();
        expect(await store.getCheckpoint('g', 'a')).toBeUndefined();
      });

      it('putCheckpoint then getCheckpoint round-trips every JSON shape exactly', async () => {
        const values: [string, Json][] = [
          ['lsn', '00000000/0179CD48'],
          ['big', BIG_CURSOR],
          ['token', TRICKY],
          ['array', ARRAY_RANGE],
          ['number', 9007199254740991],
          ['null', null],
          ['false', false],
        ];
        for (const [name, value] of values) await store.putCheckpoint('f', name, value);
        for (const [name, value] of values) expectSameJson(await store.getCheckpoint('f', name), value);
      });

      it('putCheckpoint overwrites', async () => {
        await store.putCheckpoint('f', 'slot', { lsn: '0/1' });
        await store.putCheckpoint('f', 'slot', { lsn: '0/2', extra: ['x'] });
        expectSameJson(await store.getCheckpoint('f', 'slot'), { lsn: '0/2', extra: ['x'] });
      });

      it('checkpoints are separate per flow and name', async () => {
        await store.putCheckpoint('f1', 'a', 1);
        await store.putCheckpoint('f1', 'b', 2);
        await store.putCheckpoint('f2', 'a', 3);
        expect(await store.getCheckpoint('f1', 'a')).toBe(1);
        expect(await store.getCheckpoint('f1', 'b')).toBe(2);
        expect(await store.getCheckpoint('f2', 'a')).toBe(3);
        expect(await store.getCheckpoint('f2', 'b')).toBeUndefined();
      });
    });

    describe('leases', () => {
      it('a free lease is taken and renewed by its owner; another owner is refused while it is unexpired', async () => {
        const now = Date.now();
        expect(await store.acquireLease('runner', 'A', now + 60_000)).toBe(true);
        expect(await store.acquireLease('runner', 'A', now + 120_000)).toBe(true);
        expect(await store.acquireLease('runner', 'B', now + 180_000)).toBe(false);
        expect(await store.acquireLease('runner', 'A', now + 30_000)).toBe(true);
      });

      it('an expired lease is taken over by another owner', async () => {
        expect(await store.acquireLease('runner', 'A', Date.now() + 300)).toBe(true);
        expect(await store.acquireLease('runner', 'B', later())).toBe(false);
        await sleep(450);
        expect(await store.acquireLease('runner', 'B', later())).toBe(true);
        expect(await store.acquireLease('runner', 'A', later())).toBe(false);
      });

      it('releaseLease frees the lease for its owner only', async () => {
        const until = later();
        expect(await store.acquireLease('runner', 'A', until)).toBe(true);
        await store.releaseLease('runner', 'B');
        expect(await store.acquireLease('runner', 'B', until)).toBe(false);
        await store.releaseLease('runner', 'A');
        expect(await store.acquireLease('runner', 'B', until)).toBe(true);
        expect(await store.acquireLease('runner', 'A', until)).toBe(false);
      });

      it('releasing a lease nobody holds is harmless', async () => {
        await expect(store.releaseLease('nothing', 'A')).resolves.toBeUndefined();
        expect(await store.acquireLease('nothing', 'B', later())).toBe(true);
      });

      it('leases are independent by name', async () => {
        const until = later();
        expect(await store.acquireLease('x', 'A', until)).toBe(true);
        expect(await store.acquireLease('y', 'B', until)).toBe(true);
        expect(await store.acquireLease('x', 'B', until)).toBe(false);
        expect(await store.acquireLease('y', 'A', until)).toBe(false);
      });

      it('two concurrent acquireLease calls by different owners: exactly one wins', async () => {
        const until = later();
        for (let i = 0; i < 10; i++) {
          const name = `race-${i}`;
          const [a, b] = await Promise.all(['A', 'B'].map((owner) => store.acquireLease(name, owner, until)));
          expect([a, b].filter(Boolean)).toHaveLength(1);
          // The winner really holds it: it renews, the loser is still refused.
          const [winner, loser] = a ? ['A', 'B'] : ['B', 'A'];
          expect(await store.acquireLease(name, winner, until)).toBe(true);
          expect(await store.acquireLease(name, loser, until)).toBe(false);
        }
      });

      it('two concurrent takeovers of an expired lease: exactly one wins', async () => {
        const until = later();
        for (let i = 0; i < 5; i++) {
          const name = `stale-${i}`;
          expect(await store.acquireLease(name, 'dead', Date.now() - 1_000)).toBe(true);
          const results = await Promise.all(['B', 'C'].map((owner) => store.acquireLease(name, owner, until)));
          expect(results.filter(Boolean)).toHaveLength(1);
          expect(await store.acquireLease(name, 'dead', until)).toBe(false);
        }
      });
    });

    it('close resolves', async () => {
      await expect(store.close()).resolves.toBeUndefined();
    });
  });
}
