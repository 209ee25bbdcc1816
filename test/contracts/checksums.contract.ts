/**
 * The Checksums contract: two sides (a source and a target adapter, or two of one engine) compute equal checksums
 * for equal rows and different ones for different rows, whatever the physical order, for a whole table and for
 * a planned range. Both sides must name the same `checksumKind` for their digests to be compared at all.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Json, TableSchema } from '../../src/core/model.js';
import type { Checksums } from '../../src/core/ports/checksum.js';
import type { SnapshotSource } from '../../src/core/ports/source.js';
import { rowsFrom, uniqueName, type EngineFixture, type Row } from './fixture.js';
import type { ContractOptions } from './snapshot-source.contract.js';

export interface ChecksumsHarness {
  /** Checksums of side A (e.g. the source adapter) and of side B (e.g. the target adapter). */
  a: Checksums;
  b: Checksums;
  /** Create table `name` with `rows` on side A / side B and return its description (as the flow records it). */
  loadA(name: string, rows: Row[]): Promise<TableSchema>;
  loadB(name: string, rows: Row[]): Promise<TableSchema>;
  /** Plans ranges of a side-A table (ranges are what verify compares). */
  planner: SnapshotSource;
  fixtureA: EngineFixture;
  cleanup(): Promise<void>;
}

export function checksumsContract(name: string, kind: string, make: () => Promise<ChecksumsHarness>, opts: ContractOptions = {}): void {
  (opts.skip ? describe.skip : describe)(`Checksums contract: ${name}${opts.skip ? ` (skipped: ${opts.skip})` : ''}`, () => {
    let h: ChecksumsHarness;
    beforeEach(async () => {
      h = await make();
    });
    afterEach(() => h.cleanup());

    const pair = async (rowsA: Row[], rowsB: Row[]) => {
      const n = uniqueName('ck');
      return { ta: await h.loadA(n, rowsA), tb: await h.loadB(n, rowsB) };
    };
    const both = async (p: { ta: TableSchema; tb: TableSchema }, range: Json | null = null) =>
      [await h.a.checksum(p.ta, range), await h.b.checksum(p.tb, range)] as const;

    it('both sides name the digest they are registered with', () => {
      expect(h.a.checksumKind).toBe(kind);
      expect(h.b.checksumKind).toBe(kind);
    });

    it('equal rows, loaded in a different order, give equal checksums; an empty table counts 0', async () => {
      const rows = rowsFrom(1, 200);
      const [x, y] = await both(await pair(rows, [...rows].reverse()));
      expect(x.rows).toBe(200);
      expect(x).toEqual(y);
      const [e1, e2] = await both(await pair([], []));
      expect(e1).toEqual(e2);
      expect(e1.rows).toBe(0);
    });

    it('a changed value, a missing row, a null for a value and swapped values all change the checksum', async () => {
      const rows = rowsFrom(1, 50);
      const variants: Row[][] = [
        rows.map((r) => (r.id === 20 ? { ...r, v: 'other' } : r)),
        rows.filter((r) => r.id !== 33),
        rows.map((r) => (r.id === 5 ? { ...r, v: null } : r)),
        rows.map((r) => (r.id === 1 ? { ...r, v: 'v2' } : r.id === 2 ? { ...r, v: 'v1' } : r)),
      ];
      for (const other of variants) {
        const [x, y] = await both(await pair(rows, other));
        expect(x.hash === y.hash && x.rows === y.rows).toBe(false);
      }
    });

    it('a planned range checksums only its rows, the same on both sides', async () => {
      const rows = rowsFrom(1, 300);
      const p = await pair(rows, rows);
      const plan = await h.planner.planRanges(p.ta, 100);
      let total = 0;
      for (const r of plan) {
        const [x, y] = await both(p, r.range);
        expect(x).toEqual(y);
        total += x.rows;
      }
      expect(total).toBe(300);
      await h.fixtureA.write([{ op: 'update', table: p.ta.source.name, ids: [150], v: 'changed' }]);
      const differing = [];
      for (const r of plan) {
        const [x, y] = await both(p, r.range);
        if (x.hash !== y.hash) differing.push(r.label);
      }
      expect(differing).toHaveLength(1);
    });
  });
}
