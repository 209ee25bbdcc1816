/** verify refuses to compare digests of different kinds instead of reporting every range as different. */
import { describe, expect, it } from 'vitest';
import { verifyFlow } from '../src/core/verify/verify.js';
import type { Checksums } from '../src/core/ports/checksum.js';
import type { FlowRecord } from '../src/core/model.js';

const side = (kind: string): Checksums & { calls: number } => {
  const s = { checksumKind: kind, calls: 0, checksum: async () => (s.calls++, { rows: 1, hash: '1' }) };
  return s;
};

const flow = {
  id: 'f', phase: 'streaming', summary: {}, createdAt: 0, updatedAt: 0,
  tables: [{ source: { schema: 's', name: 't' }, target: { schema: 's', name: 't' }, columns: [{ name: 'id', type: 'integer', nullable: false }], primaryKey: ['id'], estimatedRows: 1, estimatedBytes: 1, extra: null }],
  ranges: { 's.t': [{ range: null, label: 'all', estimatedRows: 1 }] },
} as unknown as FlowRecord;

describe('verify across checksum kinds', () => {
  it('refuses, naming both kinds, and computes nothing', async () => {
    const a = side('pg-md5-rowtext-60');
    const b = side('mongo-md5-ejson-sum128');
    await expect(verifyFlow({ source: a, target: b }, flow, {} as never)).rejects.toThrow(/source computes pg-md5-rowtext-60 checksums and the target mongo-md5-ejson-sum128/);
    expect(a.calls + b.calls).toBe(0);
  });

  it('compares when the kinds are the same', async () => {
    const report = await verifyFlow({ source: side('k'), target: side('k') }, flow, { concurrency: 1 } as never);
    expect(report).toBeTruthy();
  });
});
