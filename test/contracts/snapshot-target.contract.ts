/**
 * The SnapshotTarget contract, run against every adapter with the capabilities it is registered with. Rows come
 * from a SnapshotSource the harness pairs it with (same engine, or through a codec), as in a real flow.
 *
 * Pinned here: createTables and finalize are idempotent; preflight refuses a non-empty table unless resuming or
 * truncating; a chunk is invisible until committed and gone after release; a second delivery of a job waits for
 * the first and then sees its cursor; writing the same bounds again (a replay) leaves one copy of each row;
 * `commit(null)` makes the job done.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Json, TableSchema } from '../../src/core/model.js';
import type { SnapshotTargetCapabilities } from '../../src/core/ports/capabilities.js';
import type { SnapshotSource } from '../../src/core/ports/source.js';
import type { RangeWriter, SnapshotTarget } from '../../src/core/ports/target.js';
import { byId, rowsFrom, sleep, uniqueName, type EngineFixture, type Row } from './fixture.js';
import type { ContractOptions } from './snapshot-source.contract.js';

export interface SnapshotTargetHarness {
  target: SnapshotTarget;
  /** Where the rows come from, and the oracle of its database. */
  source: SnapshotSource;
  sourceFixture: EngineFixture;
  /** The rows of a table on the target, ordered by id. */
  targetRows(table: TableSchema): Promise<Row[]>;
  /** Put rows into a table on the target outside the adapter (a target that is not empty). */
  targetInsert(table: TableSchema, rows: Row[]): Promise<void>;
  cleanup(): Promise<void>;
}

export function snapshotTargetContract(
  name: string,
  caps: SnapshotTargetCapabilities,
  make: () => Promise<SnapshotTargetHarness>,
  opts: ContractOptions = {},
): void {
  (opts.skip ? describe.skip : describe)(`SnapshotTarget contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let h: SnapshotTargetHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(() => h.cleanup());

    /** A source table of `n` rows, described, and created on the target. */
    const prepared = async (n: number, o: { keyless?: boolean } = {}) => {
      const tname = uniqueName('st');
      await h.sourceFixture.create(tname, rowsFrom(1, n), o);
      const [t] = await h.source.describe(h.sourceFixture.selection([tname]));
      await h.target.preflight([t!], { truncate: false, resuming: false });
      await h.target.createTables('f', [t!]);
      const [range] = await h.source.planRanges(t!, 1_000_000);
      return { t: t!, range: range!.range };
    };
    const chunk = (t: TableSchema, range: Json, cursor: Json, maxRows: number) => h.source.nextChunk(t, range, cursor, maxRows);
    const load = async (w: RangeWriter, t: TableSchema, bounds: Json) => w.write(bounds, await h.source.read(t, bounds, h.target.accepts));
    const job = () => uniqueName('job');

    it('declares the capabilities it is registered with, and accepts at least one format', () => {
      expect(h.target.capabilities).toEqual(caps);
      expect(h.target.accepts.length).toBeGreaterThan(0);
    });

    it('createTables is idempotent; preflight refuses a non-empty table unless resuming, and truncate empties it', async () => {
      const { t } = await prepared(3);
      await h.target.createTables('f', [t]);
      expect(await h.targetRows(t)).toEqual([]);
      await h.targetInsert(t, rowsFrom(1, 2));
      await expect(h.target.preflight([t], { truncate: false, resuming: false })).rejects.toThrow();
      await h.target.preflight([t], { truncate: false, resuming: true });
      expect(await h.targetRows(t)).toEqual(rowsFrom(1, 2));
      await h.target.preflight([t], { truncate: true, resuming: false });
      expect(await h.targetRows(t)).toEqual([]);
    });

    it('loads a range chunk by chunk; a new delivery sees the committed cursor and counts; commit(null) ends it', async () => {
      const { t, range } = await prepared(100);
      const id = job();
      let w = await h.target.openRange('f', id, t);
      expect(w.cursor).toBeNull();
      expect(w.done).toBe(false);
      const c1 = await chunk(t, range, null, 40);
      expect((await load(w, t, c1.bounds)).rows).toBe(40);
      await w.commit(c1.next);
      w = await h.target.openRange('f', id, t);
      expect(w.cursor).toEqual(c1.next);
      expect(w.committed.rows).toBe(40);
      let cursor = w.cursor;
      for (;;) {
        const c = await chunk(t, range, cursor, 40);
        await load(w, t, c.bounds);
        await w.commit(c.next);
        if (c.next === null) break;
        cursor = c.next;
        w = await h.target.openRange('f', id, t);
      }
      w = await h.target.openRange('f', id, t);
      expect(w.done).toBe(true);
      expect(w.committed.rows).toBe(100);
      await w.release();
      expect(await h.targetRows(t)).toEqual(rowsFrom(1, 100));
    });

    it('a chunk is invisible until committed and gone after release (twice is safe)', async () => {
      const { t, range } = await prepared(30);
      const id = job();
      const w = await h.target.openRange('f', id, t);
      const c = await chunk(t, range, null, 1000);
      await load(w, t, c.bounds);
      expect(await h.targetRows(t)).toEqual([]);
      await w.release();
      await w.release();
      expect(await h.targetRows(t)).toEqual([]);
      const again = await h.target.openRange('f', id, t);
      expect(again.cursor).toBeNull();
      await again.release();
    });

    it('a replayed chunk converges: the same bounds written again leave one copy of each row, with later values', async () => {
      const { t, range } = await prepared(50);
      const c = await chunk(t, range, null, 1000);
      const w = await h.target.openRange('f', job(), t);
      await load(w, t, c.bounds);
      await w.commit(c.next);
      await h.sourceFixture.write([{ op: 'update', table: t.source.name, ids: [7], v: 'seven' }]);
      // Another job id over the same bounds: what `verify --repair` or an overlapping delivery does.
      const again = await h.target.openRange('f', job(), t);
      await load(again, t, c.bounds);
      await again.commit(null);
      const want = rowsFrom(1, 50).map((r) => (r.id === 7 ? { id: 7, v: 'seven' } : r));
      expect(await h.targetRows(t)).toEqual(want);
    });

    it('a second delivery of a job waits for the first, then continues from its cursor', async () => {
      const { t, range } = await prepared(20);
      const id = job();
      const first = await h.target.openRange('f', id, t);
      let opened: RangeWriter | undefined;
      const second = h.target.openRange('f', id, t).then((w) => (opened = w));
      await sleep(300);
      expect(opened).toBeUndefined();
      const c = await chunk(t, range, null, 8);
      await load(first, t, c.bounds);
      await first.commit(c.next);
      const w = await second;
      expect(w.cursor).toEqual(c.next);
      expect(w.committed.rows).toBe(8);
      await w.release();
    });

    it('finalize is idempotent; resetTable empties a table', async () => {
      const { t, range } = await prepared(10);
      const w = await h.target.openRange('f', job(), t);
      await load(w, t, (await chunk(t, range, null, 1000)).bounds);
      await w.commit(null);
      const seqs = await h.source.sequences([t]);
      const a = await h.target.finalize('f', [t], seqs);
      const b = await h.target.finalize('f', [t], seqs);
      expect(Array.isArray(a.warnings) && Array.isArray(b.warnings)).toBe(true);
      expect(await h.targetRows(t)).toEqual(rowsFrom(1, 10));
      await h.target.resetTable(t);
      expect(await h.targetRows(t)).toEqual([]);
    });

    it.skipIf(!caps.keylessTables)('keylessTables: a table without a key is created and loaded whole', async () => {
      const { t } = await prepared(60, { keyless: true });
      expect(t.primaryKey).toEqual([]);
      const all: Row[] = [];
      for (const r of await h.source.planRanges(t, 1_000_000)) {
        const id = job();
        let cursor: Json = null;
        for (;;) {
          const w = await h.target.openRange('f', id, t);
          const c = await chunk(t, r.range, cursor, 1000);
          await load(w, t, c.bounds);
          await w.commit(c.next);
          if (c.next === null) break;
          cursor = c.next;
        }
      }
      all.push(...(await h.targetRows(t)));
      expect(all.sort(byId)).toEqual(rowsFrom(1, 60));
    });
  });
}
