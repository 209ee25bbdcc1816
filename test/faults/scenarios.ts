/**
 * Fault scenarios against real servers, shared by test/faults.test.ts (short) and `npm run test:faults` (long):
 *
 * - kills: `ferry run` (snapshot+cdc) is SIGKILLed at random moments (seeded) during the snapshot and while
 *   streaming, and started again each time, under a concurrent workload;
 * - target outage: the target cluster is stopped for N seconds while streaming, then started on the same data;
 * - source restart: the source cluster gets a fast shutdown while streaming (which Ferry must not hold up) and is
 *   started again.
 *
 * Each ends the same way: the workload stops, a marker row is committed on the source once the flow streams, and
 * the time until it is on the target is the time to converge (the stream is in commit order, so everything before
 * the marker is there too). Then `ferry stop` drains, and every table is compared on both sides.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { join, dirname } from 'node:path';
import { compareDatabases, differingRows, formatComparison, type Comparison } from '../support/compare.js';
import { writeConfig } from '../support/ferry-cli.js';
import { startRestartableCluster, type RestartableCluster } from '../support/restartable-cluster.js';
import { seededRng, type Rng } from '../support/rng.js';
import { createWitness, dropWitness, witnessKeys } from '../support/witness.js';
import { markerArrived, seedWorkload, startWorkload, writeMarker, type Workload, type WorkloadStats } from '../support/workload.js';
import { errorLines, FerryProcess, reached, type UnexpectedExit } from './ferry-process.js';

export interface FaultEnv {
  source: RestartableCluster;
  target: RestartableCluster;
  close(): Promise<void>;
}

export async function startFaultEnv(): Promise<FaultEnv> {
  const [source, target] = await Promise.all([startRestartableCluster({ logical: true }), startRestartableCluster()]);
  return { source, target, close: async () => void (await Promise.allSettled([source.destroy(), target.destroy()])) };
}

export interface FaultReport {
  scenario: string;
  seed: number;
  kills: number;
  /** Kills by the flow's phase at the moment of the kill. */
  killsByPhase: Record<string, number>;
  restarts: number;
  unexpectedExits: UnexpectedExit[];
  /** From the last fault (kill, target back up, source back up) until the target held every source commit. */
  convergeMs?: number;
  lost: number;
  duplicated: number;
  changed: number;
  equal: boolean;
  comparison?: Comparison;
  workload?: WorkloadStats;
  /** Source fast-shutdown time, for the source-restart scenario. */
  sourceShutdownMs?: number;
  /** For rows that differ: both sides' rows, and the source transactions that touched their keys (witness slot). */
  witness?: string[];
  /** What went wrong; empty when the scenario passed. */
  failures: string[];
  ms: number;
}

interface Flow {
  name: string;
  sourceUrl: string;
  targetUrl: string;
  ferry: FerryProcess;
  workload: Workload;
  rng: Rng;
  report: FaultReport;
  log: (line: string) => void;
}

export interface CommonOptions {
  seed: number;
  /** Rows seeded in each workload table before the run (the snapshot's size). */
  seedRows?: number;
  clients?: number;
  /** Each workload client's pause between transactions (default 20 ms): the write rate. */
  pauseMs?: number;
  log?: (line: string) => void;
  /** Ferry exits nobody asked for are recorded as failures; restart after them so the data can still be checked. */
  restartOnExit?: boolean;
}

/** Fresh databases, schema and seed, a config, the workload started and `ferry run` started. */
async function setUp(env: FaultEnv, scenario: string, opts: CommonOptions): Promise<Flow> {
  const log = opts.log ?? (() => {});
  const name = `${scenario.replace(/\W/g, '_')}_${opts.seed.toString(36)}`;
  await Promise.all([env.source.createDatabase(`${name}_src`), env.target.createDatabase(`${name}_dst`)]);
  const sourceUrl = env.source.urlFor(`${name}_src`);
  const targetUrl = env.target.urlFor(`${name}_dst`);
  await seedWorkload(sourceUrl, opts.seedRows ?? 20_000);
  await createWitness(sourceUrl);
  const config = writeConfig({
    name,
    source: { url: sourceUrl },
    target: { url: targetUrl },
    include: ['fault.*'],
    mode: 'snapshot+cdc',
    // Small ranges and chunks: the snapshot commits often, so kills land between and inside chunks.
    rowsPerRange: 4000,
    batchRows: 1000,
    workers: 2,
    cdc: { batchMs: 200, heartbeatSeconds: 1 },
  });
  const statePath = join(dirname(config), 'state.db');
  const ferry = new FerryProcess(config, statePath, name, { restartOnExit: opts.restartOnExit ?? true, log });
  const rng = seededRng(opts.seed);
  const workload = await startWorkload({ url: sourceUrl, seed: rng.fork().seed, clients: opts.clients ?? 4, pauseMs: opts.pauseMs });
  const report: FaultReport = {
    scenario, seed: opts.seed, kills: 0, killsByPhase: {}, restarts: 0, unexpectedExits: [],
    lost: 0, duplicated: 0, changed: 0, equal: false, failures: [], ms: 0,
  };
  ferry.start();
  return { name, sourceUrl, targetUrl, ferry, workload, rng, report, log };
}

/** Wait until `ok()`, polling; false on timeout. */
async function until(ok: () => Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

/** Wait until this process has checkpointed a new stream position (it streams, and applies). */
async function streamingAndApplying(flow: Flow, timeoutMs: number): Promise<boolean> {
  const before = reached(await flow.ferry.phase(), 'streaming') ? await flow.ferry.checkpoint() : undefined;
  return until(async () => reached(await flow.ferry.phase(), 'streaming') && (await flow.ferry.checkpoint()) !== before, timeoutMs);
}

/** Log when the flow's checkpoint first moves past `before` (the streamer is back and committing), for the breakdown. */
async function firstCommitAfter(flow: Flow, before: string | undefined, since: number): Promise<void> {
  if (await until(async () => (await flow.ferry.checkpoint()) !== before, 120_000, 100)) {
    flow.log(`  the streamer committed again ${((Date.now() - since) / 1000).toFixed(1)} s after the fault ended`);
  }
}

/**
 * The end of every scenario: stop the workload, wait for the flow to stream, commit a marker and time its arrival
 * on the target, drain with `ferry stop`, compare every table.
 */
async function finish(flow: Flow, lastFaultAt: number, convergeTimeoutMs: number): Promise<void> {
  const { report, ferry } = flow;
  report.workload = await flow.workload.stop();
  if (report.workload.unexpected.length > 0) report.failures.push(`workload errors: ${report.workload.unexpected.join('; ')}`);
  if (!ferry.running()) ferry.start();
  const deadline = lastFaultAt + convergeTimeoutMs;
  // A marker committed once the flow streams can reach the target only through the stream, not through a copy.
  if (!(await until(async () => reached(await ferry.phase(), 'streaming'), deadline - Date.now(), 250))) {
    report.failures.push(`the flow did not reach streaming within ${convergeTimeoutMs / 1000} s of the last fault (phase ${await ferry.phase()})`);
  } else {
    const marker = 1 + report.kills + report.restarts;
    await writeMarker(flow.sourceUrl, marker);
    const written = Date.now();
    if (await until(() => markerArrived(flow.targetUrl, marker), Math.max(1000, deadline - Date.now()), 100)) {
      report.convergeMs = Date.now() - lastFaultAt;
      flow.log(
        `  converged ${(report.convergeMs / 1000).toFixed(1)} s after the fault ended: the workload stopped and the marker was ` +
          `committed at +${((written - lastFaultAt) / 1000).toFixed(1)} s, on the target ${((Date.now() - written) / 1000).toFixed(1)} s later`,
      );
    } else {
      report.failures.push(`the target did not catch up within ${convergeTimeoutMs / 1000} s of the last fault`);
    }
  }
  if (ferry.running()) {
    const err = await ferry.drainAndStop();
    if (err) report.failures.push(err);
  }
  await ferry.close();
  report.restarts = ferry.restarts;
  report.unexpectedExits = ferry.unexpectedExits;
  // The same exit again and again (restarted while a server is still away) is one failure, counted.
  const exits = new Map<string, number[]>();
  for (const e of ferry.unexpectedExits) {
    const what = `(code ${e.code}): ${errorLines(e.stderr)}`;
    exits.set(what, [...(exits.get(what) ?? []), e.afterMs]);
  }
  for (const [what, after] of exits) {
    const times = after.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ');
    report.failures.push(`ferry run exited by itself ${after.length === 1 ? 'once' : `${after.length} times`} ${what} (after running ${times})`);
  }
  const cmp = await compareDatabases(flow.sourceUrl, flow.targetUrl, { schemas: ['fault'] });
  report.comparison = cmp;
  report.equal = cmp.equal;
  report.lost = cmp.lost;
  report.duplicated = cmp.duplicated;
  report.changed = cmp.changed;
  if (!cmp.equal) {
    report.failures.push(`source and target differ:\n${formatComparison(cmp)}`);
    // Which source transactions touched the rows that differ: a skipped transaction shows here.
    const keys = cmp.tables.flatMap((t) => t.examples.map((e) => ({ table: t.table, key: e.slice(e.indexOf(' ') + 1) })));
    report.witness = [
      ...(await differingRows(flow.sourceUrl, flow.targetUrl, cmp).catch((err) => [`rows: ${(err as Error).message}`])),
      ...(await witnessKeys(flow.sourceUrl, keys).catch((err) => [`witness failed: ${(err as Error).message}`])),
    ];
    flow.log(`rows that differ, and the source changes of their keys:\n  ${report.witness.join('\n  ')}`);
  }
  await dropWitness(flow.sourceUrl);
}

async function guarded(flow: Flow, started: number, body: () => Promise<void>): Promise<FaultReport> {
  try {
    await body();
  } catch (err) {
    flow.report.failures.push(`scenario error: ${(err as Error).stack ?? String(err)}`);
    await flow.workload.stop().catch(() => {});
    await flow.ferry.close().catch(() => {});
  }
  flow.report.ms = Date.now() - started;
  return flow.report;
}

export interface KillOptions extends CommonOptions {
  kills: number;
  /** How many of the kills to aim at the snapshot (the rest while streaming); default a third. */
  snapshotKills?: number;
  /** The share of kills at any moment after the start, whatever the process is doing (default 0.2). */
  blindShare?: number;
}

/** SIGKILL `ferry run` at random moments during the snapshot and while streaming, restarting it each time. */
export async function killScenario(env: FaultEnv, opts: KillOptions): Promise<FaultReport> {
  const started = Date.now();
  const flow = await setUp(env, 'kills', opts);
  const { ferry, rng, report, log } = flow;
  const snapshotKills = opts.snapshotKills ?? Math.ceil(opts.kills / 3);
  return guarded(flow, started, async () => {
    let lastKill = Date.now();
    for (let i = 0; i < opts.kills; i++) {
      if (!ferry.running()) ferry.start();
      const t0 = ferry.startedAt;
      let aim: string;
      const blind = rng.next() < (opts.blindShare ?? 0.2);
      if (blind) {
        // Any moment: waiting for the old lease, planning, preparing the slot, finalizing…
        aim = 'any moment';
        await sleep(rng.int(200, 6000));
      } else if (i < snapshotKills && !reached(await ferry.phase(), 'finalizing')) {
        aim = 'snapshot';
        // Once this process has committed a chunk, at a random moment within the next 1.5 s.
        const rows = await ferry.rowsCopied();
        await until(async () => (await ferry.rowsCopied()) > rows || reached(await ferry.phase(), 'finalizing'), 60_000);
        await sleep(rng.int(0, 1500));
      } else {
        aim = 'streaming';
        if (!(await streamingAndApplying(flow, 90_000))) log(`kill ${i + 1}: no stream progress seen within 90 s`);
        await sleep(rng.int(0, 3000));
      }
      const phase = (await ferry.phase()) ?? 'none';
      const copied = phase === 'snapshot' ? `, ${await ferry.rowsCopied()} rows copied` : '';
      await ferry.kill();
      lastKill = Date.now();
      report.kills++;
      const label = phase === 'snapshot' || phase === 'streaming' ? phase : `other (${phase})`;
      report.killsByPhase[label] = (report.killsByPhase[label] ?? 0) + 1;
      log(`kill ${i + 1}/${opts.kills}: aimed at ${aim}, phase ${phase}${copied}, ${((lastKill - t0) / 1000).toFixed(1)} s after start`);
      if (i < opts.kills - 1) ferry.start();
    }
    await finish(flow, lastKill, 180_000);
  });
}

export interface OutageOptions extends CommonOptions {
  /** How long the target stays down. */
  downSeconds: number;
}

/** Stop the target cluster for N seconds while streaming, start it again on the same data directory. */
export async function targetOutageScenario(env: FaultEnv, opts: OutageOptions): Promise<FaultReport> {
  const started = Date.now();
  const flow = await setUp(env, 'target_outage', opts);
  const { ferry, report, log } = flow;
  return guarded(flow, started, async () => {
    if (!(await streamingAndApplying(flow, 120_000))) throw new Error('the flow never streamed before the outage');
    await sleep(1000);
    const stop = await env.target.stop(30_000);
    log(`target stopped (${stop.ms} ms); down for ${opts.downSeconds} s while the workload goes on`);
    await sleep(opts.downSeconds * 1000);
    const before = await ferry.checkpoint();
    await env.target.start();
    const back = Date.now();
    log('target started again');
    if (!ferry.running()) log('ferry run is not running when the target is back');
    void firstCommitAfter(flow, before, back);
    // Give the streamer time to find the target again under load before the workload ends.
    await sleep(2000);
    await finish(flow, back, 120_000);
  });
}

export interface SourceRestartOptions extends CommonOptions {
  /** A fast shutdown of the source slower than this is a failure (Ferry must not hold it up). */
  shutdownLimitMs?: number;
  /** How long the source stays down between stop and start. */
  downSeconds?: number;
}

/** Fast shutdown of the source while streaming (it must not be held up), then start it again. */
export async function sourceRestartScenario(env: FaultEnv, opts: SourceRestartOptions): Promise<FaultReport> {
  const started = Date.now();
  const flow = await setUp(env, 'source_restart', opts);
  const { ferry, report, log } = flow;
  const limit = opts.shutdownLimitMs ?? 10_000;
  return guarded(flow, started, async () => {
    if (!(await streamingAndApplying(flow, 120_000))) throw new Error('the flow never streamed before the restart');
    await sleep(1000);
    const stop = await env.source.stop(limit);
    report.sourceShutdownMs = stop.ms;
    log(`source fast shutdown took ${stop.ms} ms${stop.escalated ? ' (held up: escalated to an immediate shutdown)' : ''}`);
    if (stop.escalated) report.failures.push(`the source's fast shutdown did not finish within ${limit / 1000} s while Ferry streamed (escalated to an immediate shutdown)`);
    await sleep((opts.downSeconds ?? 2) * 1000);
    await env.source.start();
    const back = Date.now();
    log('source started again');
    if (!ferry.running()) log('ferry run is not running when the source is back');
    await sleep(2000);
    await finish(flow, back, 120_000);
  });
}

/** One paragraph per scenario: the figures asked for, and what failed. */
export function formatReport(r: FaultReport): string {
  const phases = Object.entries(r.killsByPhase).map(([k, v]) => `${v} ${k}`).join(', ');
  const lines = [
    `${r.scenario} (seed ${r.seed}, ${(r.ms / 1000).toFixed(0)} s): ${r.failures.length === 0 ? 'PASS' : 'FAIL'}`,
    `  kills ${r.kills}${phases ? ` (${phases})` : ''}, restarts ${r.restarts}, exits nobody asked for ${r.unexpectedExits.length}` +
      (r.sourceShutdownMs !== undefined ? `, source shutdown ${(r.sourceShutdownMs / 1000).toFixed(1)} s` : ''),
    `  time to converge after the last fault ${r.convergeMs !== undefined ? `${(r.convergeMs / 1000).toFixed(1)} s` : 'n/a (did not converge)'}`,
    `  rows lost ${r.lost}, rows duplicated ${r.duplicated}, rows changed ${r.changed}`,
  ];
  if (r.workload) {
    const w = r.workload;
    lines.push(`  workload: ${w.committed} transactions committed, ${w.aborted} aborted (deadlocks), ${w.connectionErrors} connection losses; ` +
      Object.entries(w.ops).map(([k, v]) => `${k} ${v}`).join(', '));
  }
  if (r.comparison) lines.push(formatComparison(r.comparison));
  for (const f of r.failures) lines.push(`  FAILURE: ${f}`);
  if (r.witness?.length) lines.push(`  rows that differ, and the source changes of their keys (witness slot):\n    ${r.witness.join('\n    ')}`);
  return lines.join('\n');
}
