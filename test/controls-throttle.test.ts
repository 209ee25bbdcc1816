/**
 * Throughput limits on real PostgreSQL: the snapshot's rows/s limit holds across the workers of one process (they
 * share one token bucket), measured in process from the snapshot phase's start to its end; and the apply limit
 * paces streamed changes. Lower bounds only (a loaded machine is slower, never faster).
 */
import { PG_CHANGE_TARGET_CAPABILITIES } from '../src/adapters/postgres/capabilities.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { controlledChangeTarget } from '../src/core/cdc/controlled-target.js';
import { silentProgress, type ProgressSink } from '../src/core/progress.js';
import type { ApplyBatch, ChangeTarget } from '../src/core/ports/change-target.js';
import { TokenBucket } from '../src/core/throttle.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

describe('throughput limits', () => {
  it('a snapshot limited to 1,000 rows/s over 2 workers takes at least rows / limit seconds', async () => {
    const urls = await freshDatabases(pair(), 'thr');
    await query(urls.sourceUrl, `
      CREATE TABLE public.a (id int PRIMARY KEY, v text);
      CREATE TABLE public.b (id int PRIMARY KEY, v text);
      INSERT INTO public.a SELECT g, md5(g::text) FROM generate_series(1, 1500) g;
      INSERT INTO public.b SELECT g, md5(g::text) FROM generate_series(1, 1500) g;
      ANALYZE;`);
    const dir = mkdtempSync(join(tmpdir(), 'ferry-thr-'));
    const config = parseConfig({
      name: 'thr',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['public.*'],
      rowsPerRange: 500,
      batchRows: 5000,
      workers: 2,
      limits: { snapshotRowsPerSecond: 1000 },
      state: { path: join(dir, 'state.db') },
    });
    const at: Record<string, number> = {};
    const progress: ProgressSink = { ...silentProgress, phase: (p) => void (at[p] ??= Date.now()) };
    const result = await runFlow({ config, progress });
    expect(result.interrupted).toBe(false);
    const seconds = (at.finalize! - at.snapshot!) / 1000;
    console.log(`snapshot phase: ${seconds.toFixed(2)} s for 3000 rows at 1000 rows/s`);
    // 3,000 rows at 1,000/s with a burst of 100: at least 2.9 s; allow for timer slack. A bucket per worker
    // instead of one shared would let 2,000 rows/s through: 1.5 s.
    expect(seconds).toBeGreaterThanOrEqual(2.7);
    const n = await query(urls.targetUrl, `SELECT (SELECT count(*) FROM public.a) + (SELECT count(*) FROM public.b) AS n`);
    expect(n[0]!.n).toBe('3000');
  });

  it('the apply limit paces the changes handed to the target', async () => {
    const seen: number[] = [];
    const batch: ApplyBatch = {
      apply: async (changes) => (seen.push(changes.length), []),
      upsert: async () => {},
      commit: async () => {},
      rollback: async () => {},
    };
    const inner: ChangeTarget = { capabilities: PG_CHANGE_TARGET_CAPABILITIES, appliedPosition: async () => undefined, begin: async () => batch, close: async () => {} };
    const target = controlledChangeTarget(inner, [], { throttle: new TokenBucket(200) });
    const b = await target.begin('f', []);
    const started = Date.now();
    const change = { op: 'insert' as const, table: 'public.a', row: { id: '1' } };
    for (let i = 0; i < 10; i++) await b.apply(Array.from({ length: 50 }, () => change));
    // 500 changes at 200/s: the last call's 50 are owed to later callers, so at least 450 / 200 = 2.25 s.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2200);
    expect(seen).toEqual(Array(10).fill(50));
  });
});
