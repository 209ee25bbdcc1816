/**
 * Node's CPU per row on the snapshot's copy path, reader against reader, alternating in one process:
 * `COPY t TO STDOUT (FORMAT binary)` from one server into `COPY t FROM STDIN (FORMAT binary)` on another, through
 *   - `pg-copy-streams`: its copy-to, then pieces joined to ~64 kB (what the snapshot did before);
 *   - `lean`: snapshot-copy-out.ts, pieces of ≥32 kB passed as they are (what it does now).
 * Prints this process's CPU (user, system) per million rows for each, and the wall time. Not a test.
 *
 *   ROWS=1000000 RUNS=3 node --import tsx bench/snapshot-reader.ts
 */
import { loadavg } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { copyOut } from '../src/adapters/postgres/snapshot-copy-out.js';
import { clusterSettings, startCluster } from '../src/embedded/cluster.js';
import { pg15Available, startPg15 } from '../test/support/pg15.js';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const RUNS = Number(process.env.RUNS ?? 3);
const USE_15 = process.env.BENCH_PG !== '18' && pg15Available();
const DDL = `CREATE TABLE bench (id bigint, a int, b int, t text, n numeric(14,4), ts timestamptz, j jsonb)`;

let pieces = 0;
let gcMs = 0;
let gcCount = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    if (process.env.GC_KINDS) process.stderr.write(`gc kind ${(e as unknown as { detail: { kind: number } }).detail.kind} ${e.duration.toFixed(1)} ms\n`);
    gcCount++;
  }
}).observe({ entryTypes: ['gc'] });

function joiner(copyAlways: boolean): Transform {
  let held: Buffer[] = [];
  let heldBytes = 0;
  const take = () => {
    const out = !copyAlways && held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
    held = [];
    heldBytes = 0;
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      pieces++;
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes < (copyAlways ? 65536 : 32768)) return done();
      done(null, take());
    },
    flush(done) {
      done(null, heldBytes ? take() : undefined);
    },
  });
}

async function once(src: pg.Client, dst: pg.Client, reader: 'pg-copy-streams' | 'lean'): Promise<{ s: number; user: number; sys: number; pieces: number; gc: string }> {
  await dst.query('TRUNCATE bench');
  pieces = 0;
  gcMs = 0;
  gcCount = 0;
  const sql = 'COPY bench TO STDOUT (FORMAT binary)';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const from = reader === 'lean' ? src.query(copyOut(sql)) : src.query(copyStreams.to(sql));
  const into = dst.query(copyStreams.from('COPY bench FROM STDIN (FORMAT binary)'));
  await pipeline(from, joiner(reader !== 'lean'), into);
  const s = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 50)); // gc entries arrive asynchronously
  const cpu = process.cpuUsage(cpu0);
  return { s, user: cpu.user / 1e6, sys: cpu.system / 1e6, pieces, gc: `${gcCount} GCs ${gcMs.toFixed(0)} ms` };
}

async function main() {
  const start = (logical: boolean) =>
    USE_15 ? startPg15({ logical, settings: clusterSettings({ logical }) }) : startCluster({ logical });
  const [source, target] = await Promise.all([start(true), start(false)]);
  const src = new pg.Client(source.url);
  const dst = new pg.Client(target.url);
  try {
    await Promise.all([src.connect(), dst.connect()]);
    await src.query(DDL);
    await dst.query(DDL);
    await src.query(`INSERT INTO bench SELECT g, g % 1000, (g * 7) % 100000, 'row ' || g || ' ' || md5(g::text),
      (g % 100000) / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
      jsonb_build_object('id', g, 'tag', 'bench', 'vals', jsonb_build_array(g % 10, g % 100)) FROM generate_series(1, ${ROWS}) g`);
    await once(src, dst, 'lean'); // warm-up (JIT, caches)
    const perM = (x: number) => ((x * 1e6) / ROWS).toFixed(3);
    for (let run = 0; run < RUNS; run++) {
      for (const reader of run % 2 ? (['lean', 'pg-copy-streams'] as const) : (['pg-copy-streams', 'lean'] as const)) {
        const r = await once(src, dst, reader);
        process.stdout.write(
          `run ${run + 1} ${reader.padEnd(15)} ${r.s.toFixed(2)} s  cpu per M rows: user ${perM(r.user)} sys ${perM(r.sys)}, ${r.pieces} pieces, ${r.gc}  [load ${loadavg()[0]!.toFixed(2)}]\n`,
        );
      }
    }
  } finally {
    await Promise.allSettled([src.end(), dst.end()]);
    await Promise.allSettled([source.stop(), target.stop()]);
  }
}

await main();
