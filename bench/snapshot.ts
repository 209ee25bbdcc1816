/**
 * `npm run bench:snapshot`: a benchmark, not a test. Copies a generated table between two PostgreSQL servers with
 * Ferry (`runFlow` in this process, N workers: plan, copy, finalize with the primary key) and with two baselines,
 * each into a fresh target database, RUNS times, the order rotating from run to run so that neither side always goes
 * first on a warm or a busy machine:
 *
 *   - psql pipe: `psql -c 'COPY … TO STDOUT (FORMAT binary)' | psql -c 'COPY … FROM STDIN (FORMAT binary)'` into the
 *     table created beforehand with its primary key (not timed);
 *   - pg_dump | psql: `pg_dump -t table | psql`, which creates the table, loads it with text COPY and adds the key.
 *
 * Both servers are Debian's PostgreSQL 15 when it is installed (pg_dump 15 cannot dump a newer server), else the
 * embedded 18 (then the pg_dump baseline is skipped). Each run prints its figures; the summary gives, per path, the
 * median and range of rows/s, and per baseline the median and range (min–max) of the paired ratios Ferry / baseline
 * and the ratio of the medians. The machine is shared (source, target and Ferry share its cores, and so may other
 * work): read ratios, not absolute rates, and look at the load averages printed with them.
 *
 *   ROWS=1000000 RUNS=3 npm run bench:snapshot     # smaller; defaults ROWS=5000000 RUNS=3 WORKERS=2
 *   BENCH_PG=18 …                                  # the embedded 18 servers even where PostgreSQL 15 is installed
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../src/config/load.js';
import { silentProgress } from '../src/core/progress.js';
import { clusterSettings, startCluster, type Cluster } from '../src/embedded/cluster.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { PG15_BIN, pg15Available, startPg15 } from '../test/support/pg15.js';

const ROWS = Number(process.env.ROWS ?? process.env.FERRY_BENCH_ROWS ?? 5_000_000);
const RUNS = Math.max(1, Number(process.env.RUNS ?? 3));
const WORKERS = Number(process.env.WORKERS ?? 2);
const BATCH_ROWS = Number(process.env.BATCH_ROWS ?? 100_000);
const RANGES = Number(process.env.RANGES ?? 16);
const USE_15 = process.env.BENCH_PG !== '18' && pg15Available();

interface Scenario {
  name: string;
  ddl: string;
  fill: (rows: number) => string;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'mixed',
    ddl: `CREATE TABLE public.bench (id bigint PRIMARY KEY, a int, b int, t text, n numeric(14,4), ts timestamptz, j jsonb)`,
    fill: (rows) => `INSERT INTO public.bench SELECT g, g % 1000, (g * 7) % 100000, 'row ' || g || ' ' || md5(g::text),
         (g % 100000) / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
         jsonb_build_object('id', g, 'tag', 'bench', 'vals', jsonb_build_array(g % 10, g % 100))
       FROM generate_series(1, ${rows}) g`,
  },
];

const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

/** `a | b` of two programs; resolves when both exited 0. */
function pipe(a: [string, string[]], b: [string, string[]]): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = spawn(a[0], a[1], { stdio: ['ignore', 'pipe', 'inherit'] });
    const into = spawn(b[0], b[1], { stdio: ['pipe', 'ignore', 'inherit'] });
    out.stdout.pipe(into.stdin);
    let left = 2;
    const done = (name: string) => (code: number | null) => {
      if (code !== 0) reject(new Error(`${name} exited with ${code}`));
      else if (--left === 0) resolve();
    };
    out.on('exit', done(a[0]));
    into.on('exit', done(b[0]));
  });
}

const bin = (name: string) => (USE_15 ? join(PG15_BIN, name) : name);

type Path = 'ferry' | 'psql' | 'pg_dump';

interface Ctx {
  source: Cluster;
  target: Cluster;
  srcUrl: string;
  scenario: Scenario;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function runPath(ctx: Ctx, path: Path, db: string): Promise<number> {
  await ctx.target.createDatabase(db);
  const dst = ctx.target.urlFor(db);
  let seconds: number;
  if (path === 'psql') {
    await sql(dst, ctx.scenario.ddl);
    seconds = await timed(() =>
      pipe(
        [bin('psql'), [ctx.srcUrl, '-qAtX', '-c', 'COPY public.bench TO STDOUT (FORMAT binary)']],
        [bin('psql'), [dst, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', 'COPY public.bench FROM STDIN (FORMAT binary)']],
      ),
    );
  } else if (path === 'pg_dump') {
    seconds = await timed(() =>
      pipe([bin('pg_dump'), ['-d', ctx.srcUrl, '-t', 'public.bench', '--no-owner', '--no-privileges']], [bin('psql'), [dst, '-qAtX', '-v', 'ON_ERROR_STOP=1']]),
    );
  } else {
    const stateDir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
    const config = parseConfig({
      name: db,
      source: { url: ctx.srcUrl },
      target: { url: dst },
      include: ['public.bench'],
      workers: WORKERS,
      rowsPerRange: Math.ceil(ROWS / RANGES),
      batchRows: BATCH_ROWS,
      state: { path: join(stateDir, 'state.db') },
    });
    try {
      seconds = await timed(async () => {
        await runFlow({ config, progress: silentProgress });
      });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  const [check] = (await sql(dst, `SELECT count(*)::int8::text n, (SELECT count(*) FROM pg_index WHERE indrelid = 'public.bench'::regclass AND indisprimary)::int k FROM public.bench`)).rows;
  if (Number(check.n) !== ROWS || check.k !== 1) throw new Error(`${path} left ${check.n} rows and ${check.k} primary key(s), expected ${ROWS} and 1`);
  // The next path gets the disk and the shared buffers to itself.
  await sql(ctx.target.url, `DROP DATABASE "${db}"`);
  await sql(ctx.target.url, 'CHECKPOINT');
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const span = (xs: number[], f: (n: number) => string) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

async function scenario(source: Cluster, target: Cluster, sc: Scenario): Promise<string[]> {
  await source.createDatabase(`src_${sc.name}`);
  const srcUrl = source.urlFor(`src_${sc.name}`);
  log(`[${sc.name}] generating ${fmt(ROWS)} rows…`);
  await sql(srcUrl, sc.ddl);
  await sql(srcUrl, sc.fill(ROWS));
  await sql(srcUrl, 'VACUUM ANALYZE public.bench');
  const size = (await sql(srcUrl, `SELECT pg_size_pretty(pg_table_size('public.bench')) s`)).rows[0].s as string;
  const paths: Path[] = ['ferry', 'psql', ...(USE_15 ? (['pg_dump'] as Path[]) : [])];
  const seconds: Record<Path, number[]> = { ferry: [], psql: [], pg_dump: [] };
  const ctx: Ctx = { source, target, srcUrl, scenario: sc };
  const out: string[] = [`scenario ${sc.name}: ${fmt(ROWS)} rows (${size}), Ferry with ${WORKERS} workers, ${RANGES} ranges, ${fmt(BATCH_ROWS)}-row chunks`];
  for (let run = 0; run < RUNS; run++) {
    // Rotate the order: run 0 Ferry first, run 1 the first baseline first, and so on.
    const order = paths.map((_, i) => paths[(i + run) % paths.length]!);
    const line: string[] = [];
    for (const path of order) {
      const s = await runPath(ctx, path, `${path.replace('_', '')}_${sc.name}_${run}`);
      seconds[path].push(s);
      line.push(`${path} ${s.toFixed(1)} s (${fmt(ROWS / s)} rows/s)`);
    }
    const ratios = paths.slice(1).map((p) => `ferry/${p} ${(seconds[p][run]! / seconds.ferry[run]!).toFixed(2)}x`);
    const msg = `  run ${run + 1}/${RUNS} [load ${load()}]: ${line.join(', ')}; ${ratios.join(', ')}`;
    log(msg);
    out.push(msg);
  }
  for (const p of paths) {
    const rates = seconds[p].map((s) => ROWS / s);
    out.push(`  ${p.padEnd(8)} median ${fmt(median(rates)).padStart(10)} rows/s   range ${span(rates, fmt)}`);
  }
  for (const p of paths.slice(1)) {
    // Ratio of rates = inverse ratio of times, paired within each run.
    const paired = seconds[p].map((s, i) => s / seconds.ferry[i]!);
    const ofMedians = median(seconds[p]) / median(seconds.ferry);
    out.push(
      `  ferry / ${p.padEnd(8)} median ${median(paired).toFixed(2)}x   range ${span(paired, (x) => x.toFixed(2))}x   ratio of medians ${ofMedians.toFixed(2)}x`,
    );
  }
  return out;
}

async function start(role: 'source' | 'target'): Promise<Cluster> {
  const settings = clusterSettings({ logical: role === 'source' });
  if (!USE_15) return startCluster({ logical: role === 'source' });
  return startPg15({ logical: role === 'source', settings });
}

async function main() {
  if (!USE_15 && !existsSync('/usr/bin/psql')) log('psql not found (apt-get install postgresql-client): the psql baseline will fail');
  if (!USE_15) log('PostgreSQL 15 not installed (or BENCH_PG=18): embedded 18 servers, pg_dump baseline skipped');
  const [source, target] = await Promise.all([start('source'), start('target')]);
  const lines = [`PostgreSQL ${USE_15 ? '15 (Debian)' : '18 (embedded)'} on both sides, ${RUNS} runs per scenario, load at start ${load()}`];
  try {
    for (const sc of SCENARIOS) lines.push(...(await scenario(source, target, sc)));
  } finally {
    await Promise.allSettled([source.stop(), target.stop()]);
  }
  lines.push(`load at end ${load()}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
