/**
 * verify compares a table whole when a side counts more rows than its planned ranges held: a MongoDB range matches one
 * BSON type bracket, so a document whose `_id` type the plan never saw is in no range on either side, and range
 * digests alone would call the table identical. Logic through the Checksums port (the adapters' counts are
 * countDocuments / count(*), exercised by the MONGODB_URL suites).
 */
import { describe, expect, it } from 'vitest';
import { verifyFlow } from '../src/core/verify/verify.js';
import type { Checksums, RangeChecksum } from '../src/core/ports/checksum.js';
import type { FlowRecord, Json } from '../src/core/model.js';

/** A side holding `ranged` rows inside the planned ranges and `outside` rows (with digest `hashOutside`) elsewhere. */
function side(opts: { ranged: number; outside: number; hashOutside: string; count: boolean }): Checksums & { wholeAsked: number } {
  const s = {
    checksumKind: 'k',
    wholeAsked: 0,
    async checksum(_t: unknown, range: Json | null): Promise<RangeChecksum> {
      if (range === null) {
        s.wholeAsked++;
        return { rows: opts.ranged + opts.outside, hash: `in+${opts.hashOutside}` };
      }
      return { rows: opts.ranged / 2, hash: 'in' };
    },
    ...(opts.count ? { count: async () => opts.ranged + opts.outside } : {}),
  };
  return s;
}

const flow = {
  id: 'f', phase: 'streaming', summary: {}, createdAt: 0, updatedAt: 0,
  tables: [{ source: { schema: 'db', name: 'c' }, target: { schema: 'db', name: 'c' }, columns: [{ name: '_id', type: 'objectId', nullable: false }], primaryKey: ['_id'], estimatedRows: 4, estimatedBytes: 1, extra: null }],
  ranges: { 'db.c': [{ range: { kind: 'mongo-id', lower: null, upper: 'm' }, label: 'r1', estimatedRows: 2 }, { range: { kind: 'mongo-id', lower: 'm', upper: null }, label: 'r2', estimatedRows: 2 }] },
} as unknown as FlowRecord;
const opts = { concurrency: 2, rechecks: 0 };

describe('verify: rows outside every planned range', () => {
  it('a document only the source holds, outside the ranges, is reported (whole-table comparison)', async () => {
    const source = side({ ranged: 4, outside: 1, hashOutside: 'x', count: true });
    const target = side({ ranged: 4, outside: 0, hashOutside: '', count: true });
    const report = await verifyFlow({ source, target }, flow, opts);
    expect(report.ok).toBe(false);
    expect(report.diffs.map((d) => d.label)).toEqual(['whole table (rows outside the planned ranges)']);
    expect(report.tables[0]).toMatchObject({ sourceRows: 5, targetRows: 4, differing: 1 });
  });

  it('a different value outside the ranges is caught even when the counts agree', async () => {
    const source = side({ ranged: 4, outside: 1, hashOutside: 'x', count: true });
    const target = side({ ranged: 4, outside: 1, hashOutside: 'y', count: true });
    expect((await verifyFlow({ source, target }, flow, opts)).ok).toBe(false);
  });

  it('only one side able to count is enough to see it', async () => {
    const source = side({ ranged: 4, outside: 0, hashOutside: '', count: false });
    const target = side({ ranged: 4, outside: 1, hashOutside: 'x', count: true });
    expect((await verifyFlow({ source, target }, flow, opts)).ok).toBe(false);
    expect(source.wholeAsked).toBe(1);
  });

  it('covered tables stay range by range (no whole-table read)', async () => {
    const source = side({ ranged: 4, outside: 0, hashOutside: '', count: true });
    const target = side({ ranged: 4, outside: 0, hashOutside: '', count: true });
    const report = await verifyFlow({ source, target }, flow, opts);
    expect(report.ok).toBe(true);
    expect(source.wholeAsked + target.wholeAsked).toBe(0);
    expect(report.tables[0]).toMatchObject({ ranges: 2, sourceRows: 4 });
  });
});
