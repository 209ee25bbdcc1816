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
 *   PATHS=ferry RUNS=1 PROFILE=/tmp/prof npm run bench:snapshot   # Ferry alone, a CPU profile of each run
 *
 * With each run: CPU seconds per million rows of the client side (Ferry's process, or the psql/pg_dump programs),
 * of the source cluster and of the target cluster (backends and background processes, from /proc): a machine
 * shared with other work changes wall times far more than these.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
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
/** PROFILE=<dir>: a CPU profile of each Ferry run alone (runFlow, not the setup), for bench/cpu-profile.ts. */
const PROFILE = process.env.PROFILE;

async function startProfile(): Promise<(file: string) => Promise<void>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 1000 });
  await post('Profiler.start');
  return async (file) => {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    mkdirSync(PROFILE!, { recursive: true });
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

/** PATHS=ferry (comma-separated): only these paths, e.g. to profile Ferry alone (`node --cpu-prof …`). */
const ONLY = (process.env.PATHS ?? '').split(',').filter(Boolean);
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

/** utime, stime, cutime, cstime (clock ticks) and ppid of a process, from /proc/<pid>/stat; null once it is gone. */
function procStat(pid: number | 'self'): { cpu: number; own: number; sys: number; childSys: number; ppid: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after the command name (which may hold spaces) in parentheses.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(f[i - 3]);
  return { own: n(14) + n(15), cpu: n(14) + n(15) + n(16) + n(17), sys: n(15), childSys: n(17), ppid: n(4) };
}

const TICK = 100; // USER_HZ on Linux

/**
 * CPU seconds a cluster has used so far: the postmaster's own and its reaped children's (backends that exited), plus
 * the live children's. Differences of two readings are the cluster's CPU in between (backends, checkpointer, WAL writer).
 */
function clusterCpu(postmaster: number): number {
  // A backend reaped between reading the postmaster and reading the children would be counted in neither: read
  // again until the postmaster's reaped-children total is the same before and after the scan.
  for (;;) {
    const before = procStat(postmaster)?.cpu ?? 0;
    let ticks = before;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const st = procStat(Number(name));
      if (st && st.ppid === postmaster) ticks += st.cpu;
    }
    if ((procStat(postmaster)?.cpu ?? 0) === before) return ticks / TICK;
  }
}

/** This process's CPU seconds (Ferry runs in it), and its reaped children's (psql, pg_dump). */
function selfCpu(): { own: number; children: number; ownSys: number; childSys: number } {
  const st = procStat('self');
  if (!st) return { own: 0, children: 0, ownSys: 0, childSys: 0 };
  return { own: st.own / TICK, children: (st.cpu - st.own) / TICK, ownSys: st.sys / TICK, childSys: st.childSys / TICK };
}

async function postmasterPid(url: string): Promise<number> {
  // Read while the backend is alive: its parent is the postmaster.
  const c = new pg.Client(url);
  await c.connect();
  const pid = Number((await c.query('SELECT pg_backend_pid() p')).rows[0].p);
  const st = procStat(pid);
  await c.end();
  if (!st) throw new Error(`backend ${pid} not found in /proc (is the server on this machine?)`);
  return st.ppid;
}

const bin = (name: string) => (USE_15 ? join(PG15_BIN, name) : name);

type Path = 'ferry' | 'psql' | 'pg_dump';

interface Ctx {
  source: Cluster;
  target: Cluster;
  pids: { source: number; target: number };
  srcUrl: string;
  scenario: Scenario;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** CPU seconds over one path: the client side (Ferry's process, or the psql/pg_dump programs) and each cluster. */
interface Cpu {
  client: number;
  /** Of which in the kernel (socket and pipe reads and writes, mostly). */
  clientSys: number;
  source: number;
  target: number;
}

interface PathResult {
  seconds: number;
  cpu: Cpu;
  /** Ferry's seconds per phase. */
  phases?: string;
}

async function runPath(ctx: Ctx, path: Path, db: string): Promise<PathResult> {
  await ctx.target.createDatabase(db);
  const dst = ctx.target.urlFor(db);
  let seconds: number;
  let phases: string | undefined;
  const cpu0 = { self: selfCpu(), source: clusterCpu(ctx.pids.source), target: clusterCpu(ctx.pids.target) };
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
      const stop = PROFILE ? await startProfile() : undefined;
      // Seconds per phase (plan, copy, finalize, …), printed with the run.
      const t0 = performance.now();
      let last = t0;
      let lastPhase = 'start';
      const marks: string[] = [];
      const mark = (next: string) => {
        const now = performance.now();
        marks.push(`${lastPhase} ${((now - last) / 1000).toFixed(1)}`);
        last = now;
        lastPhase = next;
      };
      const progress = { ...silentProgress, phase: (p: string) => mark(p) };
      seconds = await timed(async () => {
        await runFlow({ config, progress });
      });
      mark('end');
      phases = marks.slice(1).join(', ');
      await stop?.(join(PROFILE!, `${db}.cpuprofile`));
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  }
  const self = selfCpu();
  const cpu: Cpu = {
    client: path === 'ferry' ? self.own - cpu0.self.own : self.children - cpu0.self.children,
    clientSys: path === 'ferry' ? self.ownSys - cpu0.self.ownSys : self.childSys - cpu0.self.childSys,
    source: clusterCpu(ctx.pids.source) - cpu0.source,
    target: clusterCpu(ctx.pids.target) - cpu0.target,
  };
  const [check] = (await sql(dst, `SELECT count(*)::int8::text n, (SELECT count(*) FROM pg_index WHERE indrelid = 'public.bench'::regclass AND indisprimary)::int k FROM public.bench`)).rows;
  if (Number(check.n) !== ROWS || check.k !== 1) throw new Error(`${path} left ${check.n} rows and ${check.k} primary key(s), expected ${ROWS} and 1`);
  // The next path gets the disk and the shared buffers to itself.
  await sql(ctx.target.url, `DROP DATABASE "${db}"`);
  await sql(ctx.target.url, 'CHECKPOINT');
  return { seconds, cpu, phases };
}

/** CPU seconds per million rows: client (Ferry's process or psql/pg_dump), source cluster, target cluster. */
const perM = (c: Cpu) => {
  const m = (x: number) => ((x * 1e6) / ROWS).toFixed(2);
  return `client ${m(c.client)} (sys ${m(c.clientSys)}) src ${m(c.source)} dst ${m(c.target)} sum ${m(c.client + c.source + c.target)}`;
};

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
  const paths: Path[] = (['ferry', 'psql', ...(USE_15 ? (['pg_dump'] as Path[]) : [])] as Path[]).filter((p) => ONLY.length === 0 || ONLY.includes(p));
  const seconds: Record<Path, number[]> = { ferry: [], psql: [], pg_dump: [] };
  const baselines = paths.includes('ferry') ? paths.filter((p) => p !== 'ferry') : [];
  const cpus: Record<Path, Cpu[]> = { ferry: [], psql: [], pg_dump: [] };
  const pids = { source: await postmasterPid(source.url), target: await postmasterPid(target.url) };
  const ctx: Ctx = { source, target, pids, srcUrl, scenario: sc };
  const out: string[] = [`scenario ${sc.name}: ${fmt(ROWS)} rows (${size}), Ferry with ${WORKERS} workers, ${RANGES} ranges, ${fmt(BATCH_ROWS)}-row chunks`];
  for (let run = 0; run < RUNS; run++) {
    // Rotate the order: run 0 Ferry first, run 1 the first baseline first, and so on.
    const order = paths.map((_, i) => paths[(i + run) % paths.length]!);
    const line: string[] = [];
    for (const path of order) {
      const { seconds: s, cpu, phases } = await runPath(ctx, path, `${path.replace('_', '')}_${sc.name}_${run}`);
      seconds[path].push(s);
      cpus[path].push(cpu);
      line.push(`${path} ${s.toFixed(1)} s (${fmt(ROWS / s)} rows/s; cpu/M rows ${perM(cpu)}${phases ? `; phases ${phases}` : ''})`);
    }
    const ratios = baselines.map((p) => `ferry/${p} ${(seconds[p][run]! / seconds.ferry[run]!).toFixed(2)}x`);
    const msg = `  run ${run + 1}/${RUNS} [load ${load()}]: ${line.join(', ')}; ${ratios.join(', ')}`;
    log(msg);
    out.push(msg);
  }
  for (const p of paths) {
    const rates = seconds[p].map((s) => ROWS / s);
    const med = (k: keyof Cpu) => median(cpus[p].map((c) => c[k]));
    out.push(
      `  ${p.padEnd(8)} median ${fmt(median(rates)).padStart(10)} rows/s   range ${span(rates, fmt)}   ` +
        `median cpu s per M rows ${perM({ client: med('client'), clientSys: med('clientSys'), source: med('source'), target: med('target') })}`,
    );
  }
  for (const p of baselines) {
    // Ratio of rates = inverse ratio of times, paired within each run.
    const paired = seconds[p].map((s, i) => s / seconds.ferry[i]!);
    const ofMedians = median(seconds[p]) / median(seconds.ferry);
    out.push(
      `  ferry / ${p.padEnd(8)} median ${median(paired).toFixed(2)}x   range ${span(paired, (x) => x.toFixed(2))}x   ratio of medians ${ofMedians.toFixed(2)}x`,
    );
  }
  return out;
}

/** TARGET_SETTINGS='autovacuum=off,…': server settings for the target cluster (experiments). */
const TARGET_SETTINGS = Object.fromEntries(
  (process.env.TARGET_SETTINGS ?? '').split(',').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]),
);

async function start(role: 'source' | 'target'): Promise<Cluster> {
  const settings = { ...clusterSettings({ logical: role === 'source' }), ...(role === 'target' ? TARGET_SETTINGS : {}) };
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
