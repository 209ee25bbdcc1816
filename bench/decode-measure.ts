/**
 * Measuring a decode pipeline (chunk → StreamEvent) for bench/decode.ts: changes/s over several rounds, GC count
 * and time (perf_hooks 'gc' entries), and bytes allocated per change (median heap growth over small slices that
 * no collection interrupted). Events are dropped a batch at a time, as the stream delivers them.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

export interface Figures { changesPerSec: number; changesPerCpuSec: number; gcCount: number; gcMs: number; bytesPerChange: number; }

export async function measure(chunks: Buffer[], decodeChunk: (chunk: Buffer) => unknown, rounds = 5): Promise<Figures> {
  let gcCount = 0;
  let gcMs = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcCount++;
      gcMs += e.duration;
    }
  });
  let sink = 0;
  const run = (from: number, to: number) => {
    let batch: unknown[] = [];
    for (let i = from; i < to; i++) {
      const ev = decodeChunk(chunks[i]!);
      if (ev !== undefined) batch.push(ev);
      if (batch.length === 500) {
        sink += batch.length;
        batch = [];
      }
    }
    sink += batch.length;
  };
  run(0, Math.min(chunks.length, 200_000)); // warm-up
  await new Promise((r) => setTimeout(r, 50));
  obs.observe({ entryTypes: ['gc'] });
  const rates: number[] = [];
  const cpuRates: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    run(0, chunks.length);
    const c = process.cpuUsage(c0);
    rates.push(chunks.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    // CPU time of this process (user + system): steadier than wall time on a shared, loaded machine.
    cpuRates.push(chunks.length / ((c.user + c.system) / 1e6));
  }
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  // Allocation: heap growth over slices of 200 messages; a slice in which a scavenge ran shows a drop (skipped).
  const deltas: number[] = [];
  for (let i = 0; i + 200 <= Math.min(chunks.length, 400_000); i += 200) {
    const before = v8.getHeapStatistics().used_heap_size;
    run(i, i + 200);
    const d = v8.getHeapStatistics().used_heap_size - before;
    if (d > 0) deltas.push(d / 200);
  }
  deltas.sort((a, b) => a - b);
  if (sink < 0) console.log(sink);
  rates.sort((a, b) => a - b);
  cpuRates.sort((a, b) => a - b);
  return { changesPerSec: rates[Math.floor(rates.length / 2)]!, changesPerCpuSec: cpuRates[Math.floor(cpuRates.length / 2)]!, gcCount: gcCount / rounds, gcMs: gcMs / rounds, bytesPerChange: deltas[Math.floor(deltas.length / 2)] ?? NaN };
}

export function report(label: string, n: number, f: Figures): void {
  console.log(
    `${label}: ${Math.round(f.changesPerSec).toLocaleString('en-US')} changes/s wall, ${Math.round(f.changesPerCpuSec).toLocaleString('en-US')} per CPU-second (medians of rounds over ${n.toLocaleString('en-US')} messages), ` +
      `per round ${f.gcCount.toFixed(0)} GCs, ${f.gcMs.toFixed(0)} ms GC, ~${Math.round(f.bytesPerChange)} bytes allocated/change`,
  );
}
