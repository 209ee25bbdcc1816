/**
 * Keeps the heap near what is live while streaming. Every buffer of the streamer is bounded (a few MB of changes
 * wait for the target at most), so what makes RSS grow under a large transaction is garbage V8 has not collected
 * yet, in three places:
 *
 * - The young generation. V8 grows its two semi-spaces up to 16 MB each when many objects survive a scavenge (and
 *   rows waiting for the target do), about 32 MB of RSS that never shrinks back while busy. `capYoungGeneration`
 *   (called by bin/ferry.js at start) grows it once to a few MB and then sets the growth factor to 1: the same
 *   effect as `--max-semi-space-size`, which only the command line can set. V8 shrinks it again when the process
 *   idles; while streaming, the governor lets it grow back to the cap, and no further.
 * - The old generation. After each full collection V8 lets it grow by a factor of up to 4 before the next one;
 *   while streaming, `--heap-growing-percent` makes that 1.3 (the cost of marking per byte allocated stays the same
 *   whatever the live size, and no heap limit is set, so a larger live heap only collects more often, never fails).
 * - A backstop: when the used heap passes a soft limit, a full collection is requested; a limit the live heap itself
 *   exceeds moves up (1.5 × what survived), so it never collects in a loop.
 *
 * None of this sets a hard limit (no --max-old-space-size): a heap that must grow still grows. Flags V8 does not
 * let us set are skipped silently.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | undefined | null;

function collector(): (() => void) | undefined {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  return collect ?? undefined;
}

const MB = 1024 * 1024;
/** Young generation (both semi-spaces) of a capped process, MB: 2 × a 4 MB semi-space. */
export const YOUNG_GENERATION_MB = 8;
/** The cap in force (set by capYoungGeneration), MB. */
let youngCapMb: number | undefined;
let growthFactor: number | undefined;

function newSpaceMb(): number {
  return (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / MB;
}

function setGrowthFactor(f: number): void {
  if (growthFactor === f) return;
  v8.setFlagsFromString(`--semi-space-growth-factor=${f}`);
  growthFactor = f;
}

/** The user sized the young generation on the command line or in NODE_OPTIONS: theirs wins. */
function youngSizedByUser(): boolean {
  const args = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return args.some((a) => /^--(max|min)-semi-space-size|^--semi-space-growth-factor/.test(a.replace(/_/g, '-')));
}

/**
 * Grow the young generation to `mb` now (by allocating objects that survive scavenges: a few ms), then stop its
 * growth. Call it first thing in the process. `mb` 0 (or FERRY_YOUNG_GENERATION_MB=0) leaves V8's default.
 * Returns the young generation's size afterwards, MB (undefined when not capped).
 */
export function capYoungGeneration(mb = Number(process.env.FERRY_YOUNG_GENERATION_MB ?? YOUNG_GENERATION_MB)): number | undefined {
  if (!(mb > 0) || youngSizedByUser()) return undefined;
  try {
    setGrowthFactor(2);
    const hold: string[] = [];
    // 64 KB at a time that stays reachable: each scavenge finds it alive and doubles the space, up to `mb`.
    for (let n = 0; newSpaceMb() < mb && n < 1_000_000; ) for (let i = 0; i < 64; i++) hold.push('y'.repeat(1000) + n++);
    hold.length = 0;
    setGrowthFactor(1);
    youngCapMb = mb;
    return newSpaceMb();
  } catch {
    return undefined;
  }
}

export interface GovernOptions {
  /** Used heap (MB) past which a full collection is requested. */
  softLimitMb: number;
  /** Old-generation growth between full collections while governed, percent (0: V8's own heuristics). */
  growingPercent?: number;
  intervalMs?: number;
}

/** Govern the heap until the returned function is called (see the module comment). */
export function governHeap(opts: GovernOptions): () => void {
  const gc = collector();
  const limit = opts.softLimitMb * MB;
  let trigger = limit;
  const growing = opts.growingPercent ?? 0;
  if (growing > 0) {
    v8.setFlagsFromString(`--heap-growing-percent=${growing}`);
    // V8 sets the next limit at the end of a full collection: one now, or the first burst runs up to the limit
    // set before (up to 4× live).
    gc?.();
  }
  const timer = setInterval(() => {
    // V8's own counters: process.memoryUsage() also reads the RSS from /proc, which costs more than it tells here.
    if (gc && v8.getHeapStatistics().used_heap_size > trigger) {
      gc();
      trigger = Math.max(limit, v8.getHeapStatistics().used_heap_size * 1.5);
    }
    // Shrunk while idle: let it grow back (doubling at a scavenge that finds much alive), up to the cap only.
    if (youngCapMb !== undefined) setGrowthFactor(newSpaceMb() < youngCapMb ? 2 : 1);
  }, opts.intervalMs ?? 250);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (growing > 0) v8.setFlagsFromString('--heap-growing-percent=0');
    if (youngCapMb !== undefined) setGrowthFactor(1);
  };
}
