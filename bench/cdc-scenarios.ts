/**
 * The five scenarios of issue 10.6 (CDC). Each run: fresh databases, start the consumer (Ferry or native), wait until
 * it streams, run the burst, wait until its last row is visible on the target, read CPU and RSS, check the target's
 * digest against the source's, stop the consumer, drop the databases.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  cpuDelta, digest, log, Poller, resetStatements, runDatabases, sleep, sql, startConsumer, targetStatements, until, vmHwmMb,
  type Consumer, type CpuSample, type Rig, type RunDbs,
} from './cdc-rig.js';
import type { BenchSettings, ConsumerKind } from './cdc-settings.js';
import { bigTxn, hugeTxn, lagLoad, mixedBurst, smallTxns, type Workload } from './cdc-workloads.js';

export interface BurstRun {
  kind: ConsumerKind;
  run: number;
  changes: number;
  /** Seconds the burst took on the source (until its last commit returned). */
  generated: number;
  /** Seconds from the burst's start until its last row was visible on the target. */
  visible: number;
  cpu: CpuSample;
  /** The target's content equals the source's (digest). */
  same: boolean;
  /** (e) Ferry's VmHWM before the burst and after it, MB. */
  rssBefore?: number;
  rssPeak?: number;
  /** The burst's window on CLOCK_MONOTONIC in µs (the clock of V8's CPU profiles), from start to visible. */
  window?: { start: number; end: number };
}

export interface LagRun {
  kind: ConsumerKind;
  run: number;
  rate: number;
  achieved: number;
  /** Seconds the load ran (achieved × seconds = changes). */
  seconds: number;
  p50: number;
  p99: number;
  max: number;
  samples: number;
  cpu: CpuSample;
}

interface Ctx {
  rig: Rig;
  settings: BenchSettings;
  scenario: string;
}

/** Runs `body` with a fresh pair of databases and a streaming consumer, then tears both down. */
async function withConsumer<T>(ctx: Ctx, kind: ConsumerKind, run: number, w: Workload, copyData: boolean, body: (c: Consumer, dbs: RunDbs) => Promise<T>): Promise<T> {
  const dbs = await runDatabases(ctx.rig, w.ddl, w.seed);
  try {
    const consumer = await startConsumer(kind, { rig: ctx.rig, dbs, settings: ctx.settings, ddl: w.ddl, tables: w.tables, copyData, label: `${ctx.scenario}_${kind}_${run}` });
    try {
      const r = await body(consumer, dbs);
      const window = (r as { window?: unknown }).window;
      if (ctx.settings.profileDir && kind === 'ferry' && window) {
        // Beside the profile: the burst's window, so the summary can leave out start-up and snapshot.
        writeFileSync(join(ctx.settings.profileDir, `${ctx.scenario}_${kind}_${run}.window.json`), JSON.stringify(window));
      }
      return r;
    } finally {
      await consumer.stop();
    }
  } finally {
    await dbs.drop();
  }
}

/** Source and target digests of every table of the workload agree. */
async function sameContent(w: Workload, dbs: RunDbs): Promise<boolean> {
  for (const [table, cols] of Object.entries(w.digest)) {
    const [a, b] = await Promise.all([digest(dbs.src, table, cols), digest(dbs.dst, table, cols)]);
    if (a !== b) return false;
  }
  return true;
}

/**
 * Start `burst` (queries run concurrently, each on its own connection), and wait until every `probe` row is visible
 * on the target; if the digest then differs (the probe is not the last thing applied), poll the digest until it agrees.
 */
async function timedBurst(
  ctx: Ctx, consumer: Consumer, dbs: RunDbs, w: Workload, burst: string[], probe: { table: string; ids: number[] }, changes: number, run: number,
): Promise<BurstRun> {
  const poller = await Poller.open(dbs.dst);
  const clients = await Promise.all(burst.map(async () => { const c = new pg.Client(dbs.src); await c.connect(); return c; }));
  try {
    const rss = consumer.pid ? vmHwmMb(consumer.pid) : undefined;
    if (ctx.settings.targetStats) await resetStatements(dbs.dst);
    const cpu0 = consumer.cpu();
    const mono0 = Number(process.hrtime.bigint() / 1000n);
    const t0 = performance.now();
    let generatedAt = 0;
    const gen = Promise.all(burst.map((q, i) => clients[i]!.query(q))).then(() => (generatedAt = performance.now()));
    let failed: unknown;
    gen.catch((err: unknown) => (failed = err));
    let seen = 0;
    for (const id of probe.ids) {
      seen = await poller.waitRow(`SELECT 1 FROM ${probe.table} WHERE id = $1`, [id], {
        everyMs: ctx.settings.pollMs,
        timeoutMs: 1_800_000,
        check: () => {
          if (failed) throw failed;
          consumer.check();
        },
      });
    }
    await gen;
    let same = await sameContent(w, dbs);
    if (!same) {
      log(`  ${consumer.kind}: the probe row is visible but the content differs yet; polling the digest`);
      const until0 = performance.now() + 120_000;
      while (!same && performance.now() < until0) {
        const sent = performance.now();
        same = await sameContent(w, dbs);
        if (same) seen = sent;
        else await sleep(200);
      }
    }
    const cpu = cpuDelta(cpu0, consumer.cpu());
    if (ctx.settings.targetStats && consumer.kind === 'ferry') log(await targetStatements(dbs.dst));
    return {
      kind: consumer.kind, run, changes, generated: (generatedAt - t0) / 1000, visible: (seen - t0) / 1000, cpu, same,
      rssBefore: rss, rssPeak: consumer.pid ? vmHwmMb(consumer.pid) : undefined,
      window: { start: mono0, end: mono0 + (seen - t0) * 1000 },
    };
  } finally {
    await Promise.allSettled([poller.close(), ...clients.map((c) => c.end())]);
  }
}

function describe(r: BurstRun): string {
  const rate = Math.round(r.changes / r.visible).toLocaleString('en-US');
  return `  run ${r.run} ${r.kind.padEnd(6)} visible after ${r.visible.toFixed(2)} s (${rate} changes/s; burst generated in ${r.generated.toFixed(2)} s)` +
    ` cpu: consumer ${r.cpu.consumer.toFixed(1)} s, walsender ${r.cpu.walsender.toFixed(1)} s, target ${r.cpu.target.toFixed(1)} s` +
    `${r.rssPeak !== undefined ? `, VmHWM ${r.rssPeak.toFixed(0)} MB` : ''}${r.same ? '' : '  CONTENT DIFFERS'}`;
}

/** Alternate the consumers, `runs` times; a run that fails is reported and left out (the others still count). */
async function alternate<T>(ctx: Ctx, kinds: ConsumerKind[], one: (kind: ConsumerKind, run: number) => Promise<T>, show: (r: T) => string): Promise<{ results: T[]; errors: string[] }> {
  const results: T[] = [];
  const errors: string[] = [];
  for (let run = 1; run <= ctx.settings.runs; run++) {
    for (const kind of kinds) {
      try {
        const r = await one(kind, run);
        results.push(r);
        const line = show(r);
        if (line) log(line);
      } catch (err) {
        const msg = `run ${run} ${kind} failed: ${(err as Error).message}`;
        errors.push(msg);
        log(`  ${msg}`);
      }
    }
  }
  return { results, errors };
}

export function scenarioA(ctx: Ctx) {
  const w = bigTxn(ctx.settings.big);
  return alternate(ctx, ctx.settings.consumers, (kind, run) =>
    withConsumer(ctx, kind, run, w, false, (c, dbs) => timedBurst(ctx, c, dbs, w, [w.burst], { table: 'public.events', ids: [w.lastId] }, ctx.settings.big, run)), describe);
}

export function scenarioB(ctx: Ctx) {
  const w = smallTxns(ctx.settings.small);
  return alternate(ctx, ctx.settings.consumers, (kind, run) =>
    withConsumer(ctx, kind, run, w, false, (c, dbs) => timedBurst(ctx, c, dbs, w, [w.burst], { table: 'public.events', ids: [w.lastId] }, ctx.settings.small, run)), describe);
}

export function scenarioC(ctx: Ctx) {
  const w = mixedBurst(ctx.settings.mixed, ctx.settings.mixedClients);
  const changes = w.perClient * ctx.settings.mixedClients * 5;
  return alternate(ctx, ctx.settings.consumers, (kind, run) =>
    withConsumer(ctx, kind, run, w, true, (c, dbs) => timedBurst(ctx, c, dbs, w, w.calls, { table: 'public.mixed', ids: w.markers }, changes, run)), describe);
}

export function scenarioE(ctx: Ctx) {
  const w = hugeTxn(ctx.settings.rssMb, ctx.settings.rssRowKb);
  // Ferry only: native's apply runs inside the target server, there is no process of its own to compare.
  return alternate({ ...ctx, settings: { ...ctx.settings, runs: ctx.settings.rssRuns } }, ctx.settings.consumers.filter((k) => k === 'ferry'), (kind, run) =>
    withConsumer(ctx, kind, run, w, false, (c, dbs) => timedBurst(ctx, c, dbs, w, [w.burst], { table: 'public.blobs', ids: [w.lastId] }, w.rows, run)), describe);
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : NaN);

/**
 * (d) For each rate: `lagClients` connections commit transactions of `lagTxnRows` changes on a fixed schedule for
 * `lagSeconds`; each transaction's lag is the time from its commit returning on the source to the first poll that
 * sees its probe row on the target. The first 2 s of each rate are warm-up and left out of the percentiles.
 */
async function sustained(ctx: Ctx, consumer: Consumer, dbs: RunDbs, rate: number, first: number, run: number): Promise<LagRun & { next: number }> {
  const w = lagLoad();
  const rows = ctx.settings.lagTxnRows;
  const txnRate = rate / rows;
  const total = Math.max(1, Math.round(txnRate * ctx.settings.lagSeconds));
  const nClients = Number(process.env.FERRY_BENCH_LAG_CLIENTS ?? 4);
  const clients = await Promise.all(Array.from({ length: nClients }, async () => { const c = new pg.Client(dbs.src); await c.connect(); return c; }));
  const poller = await Poller.open(dbs.dst);
  const committed = new Float64Array(total);
  const seenAt = new Float64Array(total);
  let seenCount = 0;
  let lowest = 0;
  if (ctx.settings.targetStats) await resetStatements(dbs.dst);
  const cpu0 = consumer.cpu();
  const start = performance.now() + 50;
  let lastCommit = start;
  const gen = Promise.all(
    clients.map(async (c, g) => {
      for (let i = g; i < total; i += nClients) {
        const due = start + (i / txnRate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        await c.query(w.txn(first + i, rows));
        committed[i] = performance.now();
        lastCommit = Math.max(lastCommit, committed[i]!);
      }
    }),
  );
  let genDone = false;
  let genFailed: unknown;
  gen.then(() => (genDone = true), (err: unknown) => { genFailed = err; genDone = true; });
  const deadline = () => (genDone ? lastCommit + 300_000 : Infinity);
  try {
    while (seenCount < total) {
      if (genFailed) throw genFailed;
      consumer.check();
      if (performance.now() > deadline()) throw new Error(`${total - seenCount} of ${total} transactions not visible 300 s after the load ended`);
      const sent = performance.now();
      const { rows: hit } = await poller.query('SELECT txn FROM public.lag_probe WHERE txn >= $1', [first + lowest]).catch((err: { code?: string }) => {
        if (err.code === '42P01') return { rows: [] as { txn: string }[] };
        throw err;
      });
      for (const h of hit as { txn: string }[]) {
        const i = Number(h.txn) - first;
        if (i >= 0 && i < total && seenAt[i] === 0) {
          seenAt[i] = sent;
          seenCount++;
        }
      }
      while (lowest < total && seenAt[lowest] !== 0) lowest++;
      const wait = ctx.settings.pollMs - (performance.now() - sent);
      if (wait > 0) await sleep(wait);
    }
    await gen;
  } finally {
    await Promise.allSettled([poller.close(), ...clients.map((c) => c.end())]);
  }
  const cpu = cpuDelta(cpu0, consumer.cpu());
  if (ctx.settings.targetStats && consumer.kind === 'ferry') log(await targetStatements(dbs.dst));
  const warm = start + 2000;
  const lags: number[] = [];
  for (let i = 0; i < total; i++) if (committed[i]! >= warm) lags.push(Math.max(0, seenAt[i]! - committed[i]!) / 1000);
  lags.sort((a, b) => a - b);
  const achieved = (total * rows) / ((lastCommit - start) / 1000);
  return { kind: consumer.kind, run, rate, achieved, seconds: (lastCommit - start) / 1000, p50: pct(lags, 0.5), p99: pct(lags, 0.99), max: lags[lags.length - 1] ?? NaN, samples: lags.length, cpu, next: first + total };
}

export async function scenarioD(ctx: Ctx) {
  const w = lagLoad();
  const all: LagRun[] = [];
  const out = await alternate(
    ctx,
    ctx.settings.consumers,
    (kind, run) =>
      withConsumer(ctx, kind, run, w, false, async (c, dbs) => {
        const runs: LagRun[] = [];
        let first = 0;
        for (const rate of ctx.settings.lagRates) {
          log(`  run ${run} ${kind}: ${rate.toLocaleString('en-US')} changes/s for ${ctx.settings.lagSeconds} s…`);
          const r = await sustained(ctx, c, dbs, rate, first, run);
          first = r.next;
          const { next: _, ...lag } = r;
          runs.push(lag);
          all.push(lag);
          log(`    achieved ${Math.round(lag.achieved).toLocaleString('en-US')}/s: p50 ${ms(lag.p50)}, p99 ${ms(lag.p99)}, max ${ms(lag.max)} (${lag.samples} txns); cpu consumer ${lag.cpu.consumer.toFixed(1)} s, walsender ${lag.cpu.walsender.toFixed(1)} s, target ${lag.cpu.target.toFixed(1)} s`);
          await sleep(1000);
        }
        return runs;
      }),
    () => '',
  );
  return { results: all, errors: out.errors };
}

export const ms = (s: number) => `${Math.round(s * 1000)} ms`;
export { until, sql };
