/**
 * The bench's servers and consumers: one source and one target cluster per scenario; every run gets a fresh source
 * database and a fresh target database on them (dropped afterwards), so Ferry and native logical replication see the
 * same servers, the same tables and the same starting state, one after the other.
 *
 * - Ferry runs as a separate process (`bin/ferry.js run <config>`, mode snapshot+cdc), so its RSS (VmHWM) and CPU
 *   are its own; native is a subscription on the target (the apply worker is a backend of the target cluster).
 * - Visibility on the target is polled over one persistent connection; a row counts as visible at the moment the
 *   poll that first sees it was sent (its snapshot is taken after that), so the error is at most one poll interval.
 * - CPU seconds are read from /proc: the Ferry process, the source's walsender, and the whole target cluster
 *   (postmaster, live backends, and the children it reaped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { merge, type BenchSettings, type ConsumerKind } from './cdc-settings.js';

/** The Ferry CLI to run: this checkout's, or another's (FERRY_BENCH_FERRY_BIN=/path/to/other/bin/ferry.js). */
export const BIN = process.env.FERRY_BENCH_FERRY_BIN || join(import.meta.dirname, '..', 'bin', 'ferry.js');
export const log = (s: string) => process.stderr.write(`${s}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ---- CPU accounting from /proc ----

const TICK = 100; // USER_HZ on Linux

function statFields(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  } catch {
    return undefined;
  }
}

/** utime + stime (+ reaped children's when `children`), seconds. */
export function cpuOf(pid: number, children = false): number {
  const f = statFields(pid);
  if (!f) return 0;
  const n = (i: number) => Number(f[i - 3]);
  return (n(14) + n(15) + (children ? n(16) + n(17) : 0)) / TICK;
}

function ppidOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[1]) : undefined;
}

/** All CPU a cluster used so far: its postmaster, every live child, and the children it already reaped. */
export function clusterCpu(postmaster: number): number {
  let total = cpuOf(postmaster, true);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (ppidOf(pid) === postmaster) total += cpuOf(pid);
  }
  return total;
}

export async function postmasterOf(url: string): Promise<number> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    // Read while connected: the backend exits with its connection.
    const { rows } = await c.query('SELECT pg_backend_pid() AS p');
    const p = ppidOf(rows[0].p as number);
    if (!p) throw new Error('could not find the postmaster');
    return p;
  } finally {
    await c.end();
  }
}

export function vmHwmMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ---- clusters and per-run databases ----

export interface Rig {
  source: Cluster;
  target: Cluster;
  sourcePostmaster: number;
  targetPostmaster: number;
  close(): Promise<void>;
}

/** `targetStats`: load pg_stat_statements on the target (planning tracked too), for `targetStatements`. */
export async function startRig(opts: { targetStats?: boolean } = {}): Promise<Rig> {
  const stats: Record<string, string> = opts.targetStats
    ? { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'all', 'pg_stat_statements.track_planning': 'on' }
    : {};
  const [source, target] = await Promise.all([
    startCluster({ logical: true }),
    startCluster({ settings: { max_logical_replication_workers: 8, max_worker_processes: 16, ...stats } }),
  ]);
  return {
    source,
    target,
    sourcePostmaster: await postmasterOf(source.url),
    targetPostmaster: await postmasterOf(target.url),
    async close() {
      await Promise.allSettled([source.stop(), target.stop()]);
    },
  };
}

export interface RunDbs {
  src: string;
  dst: string;
  drop(): Promise<void>;
}

let dbSeq = 0;

/** A fresh source database with `ddl` (and `seed`, run once), and an empty target database. */
export async function runDatabases(rig: Rig, ddl: string, seed?: string): Promise<RunDbs> {
  const n = ++dbSeq;
  const [srcName, dstName] = [`src_${n}`, `dst_${n}`];
  await Promise.all([sql(rig.source.url, `CREATE DATABASE ${srcName}`), sql(rig.target.url, `CREATE DATABASE ${dstName}`)]);
  const src = rig.source.urlFor(srcName);
  await sql(src, ddl);
  if (seed) {
    await sql(src, seed);
    await sql(src, 'VACUUM ANALYZE');
  }
  return {
    src,
    dst: rig.target.urlFor(dstName),
    async drop() {
      // Slots of this database first (a database with a slot cannot be dropped, and a slot left behind would keep
      // its WAL): a walsender may outlive its client for a moment, so end it and retry.
      for (let i = 0; i < 20; i++) {
        const { rows } = await sql(rig.source.url, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1`, [srcName]);
        if (rows[0].n === 0) break;
        await sql(rig.source.url, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active`, [srcName]).catch(() => {});
        await sql(rig.source.url, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [srcName]).catch(() => {});
        await sleep(250);
      }
      await Promise.allSettled([
        sql(rig.source.url, `DROP DATABASE IF EXISTS ${srcName} WITH (FORCE)`),
        sql(rig.target.url, `DROP DATABASE IF EXISTS ${dstName} WITH (FORCE)`),
      ]);
      await Promise.allSettled([sql(rig.source.url, 'CHECKPOINT'), sql(rig.target.url, 'CHECKPOINT')]);
    },
  };
}

// ---- consumers ----

export interface CpuSample {
  /** The Ferry process (native: 0, its apply worker is part of the target). */
  consumer: number;
  walsender: number;
  target: number;
}

export interface Consumer {
  kind: ConsumerKind;
  /** Ferry's pid (for RSS), undefined for native. */
  pid?: number;
  cpu(): CpuSample;
  /** Throws if the consumer died (Ferry exited, subscription worker gone for good). */
  check(): void;
  stop(): Promise<void>;
}

async function walsenderPid(src: string, slot: string): Promise<number | undefined> {
  const { rows } = await sql(src, 'SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return (rows[0]?.active_pid as number | null) ?? undefined;
}

export interface StartOpts {
  rig: Rig;
  dbs: RunDbs;
  settings: BenchSettings;
  /** DDL of the tables (native: created on the target by hand; Ferry creates its own). */
  ddl: string;
  /** Tables to publish (native). */
  tables: string[];
  /** Copy existing rows first (Ferry always snapshots; native then waits for the initial sync). */
  copyData: boolean;
  /** Names the run (flow name, profile file). */
  label: string;
}

export async function startConsumer(kind: ConsumerKind, o: StartOpts): Promise<Consumer> {
  return kind === 'ferry' ? startFerry(o) : startNative(o);
}

async function startFerry(o: StartOpts): Promise<Consumer> {
  const flow = `bench_${o.label.replace(/[^a-z0-9_]/gi, '_')}`.toLowerCase();
  const slot = `ferry_${flow}`.slice(0, 63);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-cfg-'));
  const cfg = join(dir, 'ferry.yaml');
  const config = merge(
    { name: flow, source: { url: o.dbs.src }, target: { url: o.dbs.dst }, include: ['public.*'], mode: 'snapshot+cdc', workers: 2, state: { path: join(dir, 'state.db') } },
    o.settings.ferryConfig,
  );
  writeFileSync(cfg, JSON.stringify(config, null, 2));
  const flags = [...o.settings.ferryNodeFlags];
  if (o.settings.profileDir) flags.push('--cpu-prof', `--cpu-prof-dir=${o.settings.profileDir}`, `--cpu-prof-name=${o.label}.cpuprofile`);
  // Profiling: Ferry's stdout (where --trace-gc and the like write) goes to a file beside the profile.
  const stdout = o.settings.profileDir ? openSync(join(o.settings.profileDir, `${o.label}.stdout.log`), 'w') : 'ignore';
  const child: ChildProcess = spawn(process.execPath, [...flags, BIN, 'run', cfg], {
    stdio: ['ignore', stdout, 'pipe'],
    env: { ...process.env, FERRY_LOG_LEVEL: process.env.FERRY_LOG_LEVEL ?? 'warn' },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => ((exit = { code, signal }), resolve())));
  const died = () => new Error(`ferry exited (${exit?.code ?? exit?.signal}) during the run:\n${stderr.trim().split('\n').slice(-15).join('\n')}`);
  const stop = async () => {
    if (!exit) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      await exited;
      clearTimeout(timer);
      await exited;
    }
  };
  try {
    // Streaming: its slot is read, and the target's position table exists (created when the streamer starts).
    await until(
      'ferry to stream',
      async () => {
        if (exit) throw died();
        const pid = await walsenderPid(o.dbs.src, slot).catch(() => undefined);
        if (!pid) return false;
        const { rows } = await sql(o.dbs.dst, `SELECT to_regclass('_ferry.cdc_position') AS t`).catch(() => ({ rows: [{ t: null }] }));
        return rows[0].t != null;
      },
      300_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const walsender = (await walsenderPid(o.dbs.src, slot))!;
  const pid = child.pid!;
  return {
    kind: 'ferry',
    pid,
    cpu: () => ({ consumer: cpuOf(pid), walsender: cpuOf(walsender), target: clusterCpu(o.rig.targetPostmaster) }),
    check() {
      if (exit) throw died();
    },
    stop,
  };
}

let nativeShown = false;

async function startNative(o: StartOpts): Promise<Consumer> {
  const name = `native_${o.label.replace(/[^a-z0-9_]/gi, '_')}`.toLowerCase().slice(0, 60);
  await sql(o.dbs.dst, o.ddl);
  await sql(o.dbs.src, `CREATE PUBLICATION ${name} FOR TABLE ${o.tables.join(', ')}`);
  const srcDb = new URL(o.dbs.src).pathname.slice(1);
  await sql(
    o.dbs.dst,
    `CREATE SUBSCRIPTION ${name} CONNECTION 'host=127.0.0.1 port=${o.rig.source.port} user=postgres password=postgres dbname=${srcDb}' ` +
      `PUBLICATION ${name} WITH (copy_data = ${o.copyData})`,
  );
  await until(
    'the subscription to stream (and finish its initial copy)',
    async () => {
      const { rows } = await sql(o.dbs.dst, `SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS syncing FROM pg_subscription_rel`);
      if (rows[0].syncing > 0) return false;
      return (await walsenderPid(o.dbs.src, name)) !== undefined;
    },
    300_000,
  );
  const walsender = (await walsenderPid(o.dbs.src, name))!;
  if (!nativeShown) {
    nativeShown = true;
    const { rows } = await sql(o.dbs.dst, `SELECT substream, current_setting('server_version') AS v FROM pg_subscription WHERE subname = $1`, [name]);
    log(`  native: PostgreSQL ${rows[0]?.v}, subscription streaming = ${({ f: 'off', t: 'on', p: 'parallel' } as Record<string, string>)[rows[0]?.substream] ?? rows[0]?.substream}`);
  }
  return {
    kind: 'native',
    cpu: () => ({ consumer: 0, walsender: cpuOf(walsender), target: clusterCpu(o.rig.targetPostmaster) }),
    check() {},
    async stop() {
      await sql(o.dbs.dst, `DROP SUBSCRIPTION ${name}`);
    },
  };
}

export function cpuDelta(a: CpuSample, b: CpuSample): CpuSample {
  return { consumer: b.consumer - a.consumer, walsender: b.walsender - a.walsender, target: b.target - a.target };
}

// ---- visibility on the target ----

/** One persistent connection that polls the target. */
export class Poller {
  private constructor(private readonly client: pg.Client) {}

  static async open(url: string): Promise<Poller> {
    const client = new pg.Client(url);
    await client.connect();
    return new Poller(client);
  }

  /** A named (prepared) statement: planned once, so polling costs the target as little as possible. */
  query(text: string, params: unknown[] = []): Promise<pg.QueryResult> {
    let name = this.names.get(text);
    if (!name) this.names.set(text, (name = `poll_${this.names.size}`));
    return this.client.query({ name, text, values: params });
  }

  private readonly names = new Map<string, string>();

  /**
   * Poll `text` until it returns a row; resolves to the time (performance.now()) the successful poll was sent.
   * `check` is called between polls (a dead consumer fails the wait at once).
   */
  async waitRow(text: string, params: unknown[], o: { everyMs: number; timeoutMs: number; check?: () => void }): Promise<number> {
    const deadline = performance.now() + o.timeoutMs;
    for (;;) {
      const sent = performance.now();
      const r = await this.query(text, params).catch((err: { code?: string }) => {
        if (err.code === '42P01') return { rowCount: 0 }; // the table is not created yet (Ferry's schema step)
        throw err;
      });
      if ((r.rowCount ?? 0) > 0) return sent;
      o.check?.();
      if (performance.now() > deadline) throw new Error(`timed out after ${Math.round(o.timeoutMs / 1000)} s waiting on the target for: ${text}`);
      const wait = o.everyMs - (performance.now() - sent);
      if (wait > 0) await sleep(wait);
    }
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}

/** A content digest of a table (count and an order-independent hash of the listed columns' text). */
export async function digest(url: string, table: string, columns: string[]): Promise<string> {
  const { rows } = await sql(url, `SELECT count(*)::text || ':' || coalesce(sum(hashtextextended(row(${columns.join(', ')})::text, 0)), 0)::text AS d FROM ${table}`);
  return rows[0].d as string;
}

/** Forget the target's statement statistics (pg_stat_statements must be loaded: FERRY_BENCH_TARGET_STATS=1). */
export async function resetStatements(dst: string): Promise<void> {
  await sql(dst, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  await sql(dst, 'SELECT pg_stat_statements_reset()');
}

/** The target's statements of this database since the reset, by total (planning + execution) time. */
export async function targetStatements(dst: string, top = 12): Promise<string> {
  const { rows } = await sql(
    dst,
    `SELECT calls, rows, round(total_plan_time)::int AS plan, round(total_exec_time)::int AS exec, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS q
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_plan_time + total_exec_time DESC LIMIT ${top}`,
  );
  const { rows: sum } = await sql(
    dst,
    `SELECT sum(calls)::bigint AS calls, round(sum(total_plan_time))::int AS plan, round(sum(total_exec_time))::int AS exec
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
  );
  const lines = [`  target statements: ${sum[0].calls} calls, planning ${sum[0].plan} ms, execution ${sum[0].exec} ms (top by plan+exec):`];
  for (const r of rows) lines.push(`    ${String(r.calls).padStart(7)} calls ${String(r.rows).padStart(8)} rows  plan ${String(r.plan).padStart(6)} ms  exec ${String(r.exec).padStart(6)} ms  ${r.q}`);
  return lines.join('\n');
}
