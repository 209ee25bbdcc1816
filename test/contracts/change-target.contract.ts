/**
 * The ChangeTarget contract, run against every adapter with the capabilities it is registered with.
 *
 * Pinned here: nothing of a batch is visible before `commit`, and nothing after `rollback`; `commit(p)` makes
 * `appliedPosition` return p (the same JSON); replaying changes, or applying them over a newer copy, converges
 * (insert upserts, update sets the columns present, delete of an absent row is a no-op, a key change moves the
 * row); an update that cannot be completed (row missing, columns absent) is returned as a MissingRow and completed
 * by `upsert`; declared options (truncate, savepoints, concurrent batches, keyless replay) work.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Position, TableSchema } from '../../src/core/model.js';
import type { ChangeTargetCapabilities } from '../../src/core/ports/capabilities.js';
import type { Change } from '../../src/core/ports/change-source.js';
import type { ChangeTarget } from '../../src/core/ports/change-target.js';
import { rowsFrom, uniqueName, type Row, type RowImages, type TableOptions } from './fixture.js';
import type { ContractOptions } from './snapshot-source.contract.js';

export interface ChangeTargetHarness {
  /** A new adapter on the target database. Closed by the suite. */
  open(): Promise<ChangeTarget>;
  /** Create contract table `name` on the target holding `rows`; its schema as the flow records it. */
  table(name: string, rows: Row[], opts?: TableOptions): Promise<TableSchema>;
  /** Row images in an encoding the target accepts. */
  images: RowImages;
  /** The ports' table key changes carry for `table` (its source key). */
  key(table: TableSchema): string;
  /** The rows on the target, ordered by id. */
  targetRows(table: TableSchema): Promise<Row[]>;
  /** A position of the engine the target is fed from, increasing with `n`. */
  position(n: number): Position;
  cleanup(): Promise<void>;
}

export function changeTargetContract(
  name: string,
  caps: ChangeTargetCapabilities,
  make: () => Promise<ChangeTargetHarness>,
  opts: ContractOptions = {},
): void {
  (opts.skip ? describe.skip : describe)(`ChangeTarget contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let h: ChangeTargetHarness;
    let target: ChangeTarget;
    beforeEach(async () => {
      h = await make();
      target = await h.open();
    });
    afterEach(async () => {
      await target.close();
      await h.cleanup();
    });

    const img = () => h.images;
    const ins = (t: TableSchema, r: Row): Change => ({ op: 'insert', table: h.key(t), row: img().image(r) });
    const upd = (t: TableSchema, r: Row): Change => ({ op: 'update', table: h.key(t), row: img().image(r), old: null });
    const del = (t: TableSchema, id: number): Change => ({ op: 'delete', table: h.key(t), old: img().key(id) });
    const setup = async (rows: Row[], o: TableOptions = {}) => {
      const t = await h.table(uniqueName('ct'), rows, o);
      return { t, flow: uniqueName('flow') };
    };

    it('declares the capabilities it is registered with', () => {
      expect(target.capabilities).toEqual(caps);
      expect(target.capabilities.encodings.length).toBeGreaterThan(0);
    });

    it('commit records the position with the changes; rollback keeps neither; nothing shows before commit', async () => {
      const { t, flow } = await setup([]);
      expect(await target.appliedPosition(flow)).toBeUndefined();
      let b = await target.begin(flow, [t]);
      await b.apply([ins(t, { id: 1, v: 'a' })]);
      expect(await h.targetRows(t)).toEqual([]);
      await b.commit(h.position(1));
      expect(await target.appliedPosition(flow)).toEqual(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'a' }]);
      b = await target.begin(flow, [t]);
      await b.apply([ins(t, { id: 2, v: 'b' }), del(t, 1)]);
      await b.rollback();
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'a' }]);
      expect(await target.appliedPosition(flow)).toEqual(h.position(1));
      // Another adapter (a restarted streamer) reads the same position from the target itself.
      const other = await h.open();
      try {
        expect(await other.appliedPosition(flow)).toEqual(h.position(1));
      } finally {
        await other.close();
      }
    });

    it('applies inserts, updates, deletes and key changes in order', async () => {
      const { t, flow } = await setup(rowsFrom(1, 4));
      const b = await target.begin(flow, [t]);
      const moved: Change = { op: 'update', table: h.key(t), row: img().image({ id: 40, v: 'v4' }), old: img().key(4) };
      await b.apply([ins(t, { id: 5, v: 'v5' }), upd(t, { id: 2, v: 'two' }), del(t, 3), moved, upd(t, { id: 5, v: 'five' })]);
      await b.commit(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'v1' }, { id: 2, v: 'two' }, { id: 5, v: 'five' }, { id: 40, v: 'v4' }]);
    });

    it('a replay converges: the same changes again, or over a newer copy, leave the same rows', async () => {
      const { t, flow } = await setup(rowsFrom(1, 3));
      const changes = [ins(t, { id: 4, v: 'v4' }), upd(t, { id: 1, v: 'one' }), del(t, 2), ins(t, { id: 3, v: 'three' })];
      for (let i = 1; i <= 3; i++) {
        const b = await target.begin(flow, [t]);
        await b.apply(changes);
        await b.commit(h.position(i));
      }
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'one' }, { id: 3, v: 'three' }, { id: 4, v: 'v4' }]);
      // Many inserts of rows that already exist (a snapshot newer than the change): upserted, not duplicated.
      const many = rowsFrom(1, 500);
      for (let i = 0; i < 2; i++) {
        const b = await target.begin(flow, [t]);
        await b.apply(many.map((r) => ins(t, r)));
        await b.commit(h.position(10 + i));
      }
      expect(await h.targetRows(t)).toEqual(many);
    });

    it('an update missing its row and some columns is returned, and upsert completes it', async () => {
      const { t, flow } = await setup([{ id: 1, v: 'v1' }]);
      const b = await target.begin(flow, [t]);
      // Only the key: the value was not sent (unchanged). On a present row that leaves it as it is.
      const partial = (id: number): Change => ({ op: 'update', table: h.key(t), row: img().key(id), old: null });
      expect(await b.apply([partial(1)])).toEqual([]);
      const missing = await b.apply([partial(7)]);
      expect(missing.map((m) => ({ table: m.table, id: img().decode(m.key).id }))).toEqual([{ table: h.key(t), id: 7 }]);
      await b.upsert(h.key(t), [img().image({ id: 7, v: 'fetched' })]);
      await b.commit(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'v1' }, { id: 7, v: 'fetched' }]);
    });

    it.skipIf(!caps.truncate)('truncate: empties the tables it names', async () => {
      const { t, flow } = await setup(rowsFrom(1, 5));
      const b = await target.begin(flow, [t]);
      await b.apply([{ op: 'truncate', tables: [h.key(t)], cascade: false, restartIdentity: false }, ins(t, { id: 9, v: 'after' })]);
      await b.commit(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 9, v: 'after' }]);
    });

    it.skipIf(!caps.concurrentBatches)('concurrentBatches: two open batches are independent transactions', async () => {
      const { t, flow } = await setup([]);
      const u = await h.table(uniqueName('ct'), []);
      const a = await target.begin(flow, [t, u]);
      const b = await target.begin(flow, [t, u]);
      await a.apply([ins(t, { id: 1, v: 'a' })]);
      await b.apply([ins(u, { id: 2, v: 'b' })]);
      await b.rollback();
      await a.commit(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'a' }]);
      expect(await h.targetRows(u)).toEqual([]);
    });

    it.skipIf(!caps.savepoints)('savepoints: rollbackTo undoes what was applied after the savepoint only', async () => {
      const { t, flow } = await setup([]);
      const b = await target.begin(flow, [t]);
      await b.apply([ins(t, { id: 1, v: 'kept' })]);
      await b.savepoint!('sub1');
      await b.apply([ins(t, { id: 2, v: 'undone' }), upd(t, { id: 1, v: 'undone' })]);
      await b.rollbackTo!('sub1');
      await b.apply([ins(t, { id: 3, v: 'after' })]);
      await b.commit(h.position(1));
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'kept' }, { id: 3, v: 'after' }]);
    });

    it.skipIf(!caps.keylessReplay)('keylessReplay: a replayed insert into a table without a key converges', async () => {
      const { t, flow } = await setup([], { keyless: true });
      for (let i = 1; i <= 2; i++) {
        const b = await target.begin(flow, [t]);
        await b.apply([ins(t, { id: 1, v: 'a' })]);
        await b.commit(h.position(i));
      }
      expect(await h.targetRows(t)).toEqual([{ id: 1, v: 'a' }]);
    });
  });
}
