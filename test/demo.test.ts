/** `npm start` end to end, small: snapshot, a workload while streaming, cutover, verify; exit 0 only when identical. */
import { describe, expect, it } from 'vitest';
import { ferry } from './support/ferry-cli.js';

describe('ferry demo', () => {
  it('shows the whole migration and ends identical', async () => {
    const r = await ferry(['demo', '--scale', '0.02', '--seconds', '4'], { FERRY_LOG_LEVEL: 'info' });
    expect(r.stderr).not.toContain('unexpected error');
    expect(r.code).toBe(0);
    // Not a TTY: progress is JSON lines on stderr; the summaries are on stdout.
    const phases = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { phase?: string }).flatMap((l) => (l.phase ? [l.phase] : []));
    expect(phases).toEqual(expect.arrayContaining(['snapshot', 'finalize', 'streaming', 'stopped']));
    const placed = Number(/workload\s+([\d,]+) orders placed/.exec(r.stdout)?.[1]?.replace(/,/g, ''));
    expect(placed).toBeGreaterThan(10);
    const applied = Number(/streaming\s+([\d,]+) changes applied/.exec(r.stdout)?.[1]?.replace(/,/g, ''));
    expect(applied).toBeGreaterThan(placed * 3);
    expect(r.stdout).toContain('verify       identical: every table, every range');
    expect(r.stderr.match(/^ {2}identical {2}shop\./gm)).toHaveLength(6);
  });
});
