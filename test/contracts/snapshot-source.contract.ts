/**
 * The SnapshotSource contract, run against every adapter with the capabilities it is registered with (each
 * declaration is tested: on, it must work; off, the port's fallback must hold).
 *
 * Pinned here: the same range and cursor give the same chunk and the same rows; following `next` from any chunk,
 * even from another adapter instance (a resumed job), covers the rest of the range with each row exactly once; the
 * ranges of a plan cover the table exactly once; a keyed chunk holds at most `maxRows` rows.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Json, TableSchema } from '../../src/core/model.js';
import type { SnapshotSourceCapabilities } from '../../src/core/ports/capabilities.js';
import type { SnapshotSource } from '../../src/core/ports/source.js';
import { byId, rowsFrom, uniqueName, type EngineFixture, type Row, type RowStreamCodecForTests } from './fixture.js';

export interface SnapshotSourceHarness {
  source: SnapshotSource;
  /** A second adapter on the same database (a restarted process resuming a job). */
  reopen(): Promise<SnapshotSource>;
  fixture: EngineFixture;
  streams: RowStreamCodecForTests;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /** Skip the whole suite, saying why (e.g. `MONGODB_URL is not set`). */
  skip?: string;
}

/** Every row of `range` read chunk by chunk from `cursor`, with the chunks' sizes. */
export async function readRange(
  source: SnapshotSource,
  streams: RowStreamCodecForTests,
  table: TableSchema,
  range: Json,
  maxRows: number,
  cursor: Json = null,
): Promise<{ rows: Row[]; sizes: number[] }> {
  const rows: Row[] = [];
  const sizes: number[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const chunk = await source.nextChunk(table, range, cursor, maxRows);
    const got = await streams.decodeStream(table, await source.read(table, chunk.bounds, streams.formats));
    rows.push(...got);
    sizes.push(got.length);
    if (chunk.next === null) return { rows, sizes };
    cursor = chunk.next;
  }
  throw new Error('the range never ended');
}

export function snapshotSourceContract(
  name: string,
  caps: SnapshotSourceCapabilities,
  make: () => Promise<SnapshotSourceHarness>,
  opts: ContractOptions = {},
): void {
  (opts.skip ? describe.skip : describe)(`SnapshotSource contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let h: SnapshotSourceHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(() => h.cleanup());

    const table = async (n: number, o: { keyless?: boolean; sequence?: boolean } = {}) => {
      const name = uniqueName('ss');
      await h.fixture.create(name, rowsFrom(1, n), o);
      const [t] = await h.source.describe(h.fixture.selection([name]));
      return t!;
    };

    it('declares the capabilities it is registered with', () => {
      expect(h.source.capabilities).toEqual(caps);
      expect(caps.formats.length).toBeGreaterThan(0);
      expect(h.streams.formats.some((f) => caps.formats.includes(f))).toBe(true);
    });

    it('describes the selected table with its key, and rejects an include that matches nothing', async () => {
      const t = await table(5);
      expect(t.primaryKey.length).toBeGreaterThan(0);
      expect(t.columns.length).toBeGreaterThanOrEqual(2);
      expect(JSON.parse(JSON.stringify(t))).toEqual(t); // plain JSON: it is stored with the flow
      await expect(h.source.describe(h.fixture.selection([uniqueName('absent')]))).rejects.toThrow(/absent/);
    });

    it('plans deterministically, and the ranges cover every row exactly once', async () => {
      const t = await table(300);
      const plan = await h.source.planRanges(t, 100);
      expect(await h.source.planRanges(t, 100)).toEqual(plan);
      expect(plan.length).toBeGreaterThanOrEqual(1);
      const all: Row[] = [];
      for (const r of plan) all.push(...(await readRange(h.source, h.streams, t, r.range, 40)).rows);
      expect(all.sort(byId)).toEqual(rowsFrom(1, 300));
    });

    it('the same range and cursor give the same chunk and the same rows; a keyed chunk holds at most maxRows', async () => {
      const t = await table(120);
      const [r] = await h.source.planRanges(t, 1000);
      const a = await h.source.nextChunk(t, r!.range, null, 25);
      expect(await h.source.nextChunk(t, r!.range, null, 25)).toEqual(a);
      const b = await h.source.nextChunk(t, r!.range, a.next, 25);
      expect(await h.source.nextChunk(t, r!.range, a.next, 25)).toEqual(b);
      const read = async (bounds: Json) => (await h.streams.decodeStream(t, await h.source.read(t, bounds, h.streams.formats))).sort(byId);
      const first = await read(a.bounds);
      expect(await read(a.bounds)).toEqual(first);
      expect(first.length).toBeGreaterThan(0);
      expect(first.length).toBeLessThanOrEqual(25);
      const second = await read(b.bounds);
      expect(second.filter((x) => first.some((y) => y.id === x.id))).toEqual([]);
    });

    it('a cursor resumed by another adapter instance continues the range: every row once, none skipped', async () => {
      const t = await table(200);
      const [r] = await h.source.planRanges(t, 1000);
      const c1 = await h.source.nextChunk(t, r!.range, null, 30);
      const c2 = await h.source.nextChunk(t, r!.range, c1.next, 30);
      const done = [
        ...(await h.streams.decodeStream(t, await h.source.read(t, c1.bounds, h.streams.formats))),
        ...(await h.streams.decodeStream(t, await h.source.read(t, c2.bounds, h.streams.formats))),
      ];
      const again = await h.reopen();
      try {
        const rest = await readRange(again, h.streams, t, r!.range, 30, c2.next);
        expect([...done, ...rest.rows].sort(byId)).toEqual(rowsFrom(1, 200));
        expect(Math.max(...rest.sizes)).toBeLessThanOrEqual(30);
      } finally {
        await again.close();
      }
    });

    it('reads in a format from `accepted`, and rejects or falls back only within what it declares', async () => {
      const t = await table(3);
      const [r] = await h.source.planRanges(t, 1000);
      const c = await h.source.nextChunk(t, r!.range, null, 1000);
      for (const f of h.streams.formats.filter((x) => caps.formats.includes(x))) {
        const s = await h.source.read(t, c.bounds, [f]);
        expect(s.format).toBe(f);
        expect((await h.streams.decodeStream(t, s)).sort(byId)).toEqual(rowsFrom(1, 3));
      }
    });

    it.skipIf(!caps.keylessRanges)('keylessRanges: a table without a key is planned and chunked, each row exactly once', async () => {
      const t = await table(400, { keyless: true });
      expect(t.primaryKey).toEqual([]);
      const plan = await h.source.planRanges(t, 150);
      const all: Row[] = [];
      for (const r of plan) all.push(...(await readRange(h.source, h.streams, t, r.range, 60)).rows);
      expect(all.sort(byId)).toEqual(rowsFrom(1, 400));
    });

    it.skipIf(!caps.sequences)('sequences: reports the current value of a sequence the table owns', async () => {
      const t = await table(7, { sequence: true });
      const key = h.fixture.tableKey(t.source.name);
      const seqs = (await h.source.sequences([t])).filter((s) => s.table === key);
      expect(seqs).toHaveLength(1);
      expect(BigInt(seqs[0]!.lastValue)).toBeGreaterThanOrEqual(7n);
    });

    it.skipIf(caps.sequences)('no sequences: sequences() returns []', async () => {
      const t = await table(3);
      expect(await h.source.sequences([t])).toEqual([]);
    });
  });
}
