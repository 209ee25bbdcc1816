/** The terminal view while streaming: the clock and rates keep moving, per-table counts, messages above the frame. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTtyStreamView } from '../src/progress/tty-stream.js';

class Screen extends Writable {
  isTTY = true;
  columns = 120;
  rows = 20;
  out = '';
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void) {
    this.out += chunk.toString();
    cb();
  }
  /** What a terminal shows: apply \r, \n, cursor-up (A), erase-below (J), erase-line (K). */
  visible(): string[] {
    const lines: string[][] = [[]];
    let r = 0;
    let c = 0;
    for (const m of this.out.matchAll(/\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|./gsu)) {
      const [tok, n, cmd] = m;
      if (cmd === 'A') r = Math.max(0, r - Number(n || 1));
      else if (cmd === 'J') {
        lines[r] = (lines[r] ?? []).slice(0, c);
        lines.length = r + 1;
      } else if (cmd === 'K') lines[r] = n === '2' ? Array(c).fill(' ') : (lines[r] ?? []).slice(0, c);
      else if (cmd) continue;
      else if (tok === '\r') c = 0;
      else if (tok === '\n') {
        r++;
        c = 0;
        lines[r] ??= [];
      } else {
        const l = (lines[r] ??= []);
        while (l.length < c) l.push(' ');
        l[c++] = tok;
      }
    }
    return lines.map((l) => l.join('').trimEnd()).filter((l) => l !== '');
  }
}

afterEach(() => vi.useRealTimers());

describe('createTtyStreamView', () => {
  it('redraws in place with a moving clock, counts per table, and lag that grows while nothing commits', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const screen = new Screen();
    const counts = { 'shop.orders': { received: { insert: 5, update: 3, delete: 1, truncate: 0 }, applied: { insert: 4, update: 3, delete: 1, truncate: 0 } } };
    const view = createTtyStreamView(screen as unknown as NodeJS.WriteStream, { startedAt: 1_000_000 - 61_000, counts: () => counts, color: false });
    view.streamed({ changes: 8, transactions: 2, lagMs: 150, position: '0/1A' });
    vi.advanceTimersByTime(300);
    let shown = screen.visible();
    expect(shown).toHaveLength(2);
    expect(shown[0]).toMatch(/^Ferry {2}streaming {2}1:01 {2}8 changes {2}2 txns .* lag 0\.15 s {2}at 0\/1A$/);
    expect(shown[1]).toMatch(/shop\.orders +\+4 ins +~3 upd +-1 del {2}\(1 in flight\)/);

    // Nothing arrives for 10 s: the clock moves on and the lag shown grows with it.
    vi.advanceTimersByTime(10_000);
    shown = screen.visible();
    expect(shown).toHaveLength(2);
    expect(shown[0]).toContain('1:11');
    expect(shown[0]).toMatch(/lag 10\.\d\d s/);

    // A message goes above the frame; the frame is drawn once, below it, never twice.
    view.warn('SIGINT: committing the changes applied so far, then stopping');
    view.phase('stopped');
    view.close();
    shown = screen.visible();
    expect(shown[0]).toBe('⚠ SIGINT: committing the changes applied so far, then stopping');
    expect(shown.filter((l) => l.startsWith('Ferry'))).toHaveLength(1);
    expect(shown[1]).toMatch(/^Ferry {2}stopped/);
    const frames = screen.out.length;
    vi.advanceTimersByTime(5_000);
    expect(screen.out.length).toBe(frames); // closed: no more drawing
  });
});
