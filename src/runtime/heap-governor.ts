/**
 * V8 collects lazily: while streaming, rows that were applied long ago still count in RSS until the heap reaches a
 * size V8 picked from its own heuristics, which is several times what is live. With every buffer of the streamer
 * bounded, the live heap is small, so a collection requested when the heap passes a soft limit keeps RSS near
 * what is actually in use. If V8 does not let us request one, this does nothing.
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

/** Check every `intervalMs`; collect when the used heap passes `softLimitMb`. Returns a stop function. */
export function governHeap(opts: { softLimitMb: number; intervalMs?: number }): () => void {
  const gc = collector();
  if (!gc) return () => {};
  const limit = opts.softLimitMb * 1024 * 1024;
  const timer = setInterval(() => {
    // v8's own counters: process.memoryUsage() also reads the RSS from /proc, which costs more than it tells here.
    if (v8.getHeapStatistics().used_heap_size > limit) gc();
  }, opts.intervalMs ?? 250);
  timer.unref();
  return () => clearInterval(timer);
}
