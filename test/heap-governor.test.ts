/**
 * The heap governor (src/runtime/heap-governor.ts), each case in a Node process of its own (V8's heap settings are
 * per process, and a vitest worker's young generation has long grown).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const GOVERNOR = join(import.meta.dirname, '..', 'src', 'runtime', 'heap-governor.ts');

/** Run `body` (an ES module's text, with `gov` = the governor module) in a fresh node; returns what it prints as JSON. */
function inNode(body: string, env: NodeJS.ProcessEnv = {}): Record<string, number> {
  const script = `const gov = await import(${JSON.stringify(GOVERNOR)});\n${body}`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** Allocation that keeps thousands of 4 KB strings alive for a while: V8 grows an uncapped young generation to 32 MB. */
const CHURN = `
import v8 from 'node:v8';
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size / 1048576;
let keep = [];
let max = 0;
for (let i = 0; i < 150000; i++) {
  keep.push('x'.repeat(4000) + i);
  if (keep.length > 2000) keep = keep.slice(1000);
  if (i % 500 === 0) max = Math.max(max, young());
}
`;

describe('heap governor', () => {
  it('caps the young generation at 8 MB (V8 alone grows it to 32 MB under the same load)', () => {
    const capped = inNode(`const after = gov.capYoungGeneration(8);\n${CHURN}\nconsole.log(JSON.stringify({ after, max }));`);
    expect(capped.after).toBe(8);
    expect(capped.max).toBeLessThanOrEqual(8);
    const uncapped = inNode(`${CHURN}\nconsole.log(JSON.stringify({ max }));`);
    expect(uncapped.max).toBeGreaterThan(8);
    // The user's own flags win, and FERRY_YOUNG_GENERATION_MB=0 leaves V8's default.
    expect(inNode(`console.log(JSON.stringify({ after: gov.capYoungGeneration() ?? -1 }));`, { FERRY_YOUNG_GENERATION_MB: '0' }).after).toBe(-1);
    expect(inNode(`console.log(JSON.stringify({ after: gov.capYoungGeneration() ?? -1 }));`, { NODE_OPTIONS: '--max-semi-space-size=16' }).after).toBe(-1);
  });

  it('a live heap above the soft limit moves the limit up instead of collecting in a loop', () => {
    const r = inNode(`
import { PerformanceObserver, constants } from 'node:perf_hooks';
let majors = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; }).observe({ entryTypes: ['gc'] });
const live = Array.from({ length: 40000 }, (_, i) => 'z'.repeat(1000) + i); // about 40 MB that stays
const stop = gov.governHeap({ softLimitMb: 16, growingPercent: 30, intervalMs: 10 });
await new Promise((r) => setTimeout(r, 1500));
stop();
await new Promise((r) => setTimeout(r, 50));
console.log(JSON.stringify({ majors, live: live.length }));`);
    // One at the start (the new growth factor takes effect), one at the soft limit; not 150 (one per tick).
    expect(r.majors).toBeGreaterThanOrEqual(1);
    expect(r.majors).toBeLessThanOrEqual(5);
  });
});
