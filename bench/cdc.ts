/**
 * `npm run bench:cdc`: a benchmark, not a test (issue 10.6, CDC). Each scenario runs on a fresh pair of embedded
 * PostgreSQL clusters, FERRY_BENCH_RUNS times (default 3), alternating Ferry (`bin/ferry.js run`, a separate
 * process, mode snapshot+cdc) and native logical replication (CREATE SUBSCRIPTION on the same servers), each run on
 * fresh databases. It prints every run's figures, the median and range of the ratio Ferry/native, and a summary
 * against the issue's targets.
 *
 *   (a) one 1 M-row transaction          from the burst's start until its last row is visible on the target
 *   (b) 200 k one-row transactions       same
 *   (c) mixed burst, 8 clients           200 k changes: inserts, updates, deletes (5 per transaction)
 *   (d) lag at 10 k and 50 k changes/s   30 s each; commit on the source → visible on the target, p50/p99
 *   (e) Ferry's peak RSS (VmHWM)         through a 1 GB transaction
 *
 * Scale: FERRY_BENCH_SCALE=0.05 (every size), FERRY_BENCH_RUNS=1, FERRY_BENCH_SCENARIOS=a,c (or big, small, mixed,
 * lag, rss); single sizes: FERRY_BENCH_BIG, _SMALL, _MIXED, _MIXED_CLIENTS, _LAG_RATES (10000,50000),
 * _LAG_SECONDS, _LAG_TXN_ROWS, _LAG_CLIENTS, _RSS_MB, _RSS_ROW_KB (4), _RSS_RUNS (default: RUNS); FERRY_BENCH_CONSUMERS=ferry (skip native);
 * FERRY_BENCH_FERRY_CONFIG='{"cdc":{"batchMs":50}}' (merged into Ferry's config);
 * FERRY_BENCH_FERRY_BIN=<other checkout>/bin/ferry.js (bench another tree's Ferry with this rig);
 * FERRY_BENCH_TARGET_STATS=1 (pg_stat_statements on the target: Ferry's statements after each burst);
 * FERRY_BENCH_NODE_FLAGS='--max-semi-space-size=32' (flags of the Ferry process); FERRY_* (not FERRY_BENCH_*) variables
 * reach the Ferry process, e.g. FERRY_STREAM_IN_PROGRESS=1;
 * FERRY_BENCH_PROFILE=<dir> (a CPU profile per Ferry process; summarize with `node --import tsx bench/cpu-profile.ts <file>`).
 *
 *   FERRY_BENCH_SCENARIOS=b FERRY_BENCH_SCALE=0.05 FERRY_BENCH_RUNS=1 npm run bench:cdc    # about 20 s
 *
 * At the default sizes it takes about 30 min on 2 loaded cores (measured on main at 6d6abc3: (a) 7 min, (b) 3, (c) 5,
 * (d) 8–10, (e) 5); FERRY_BENCH_RSS_RUNS=1 saves about 3.5 min. On a loaded machine trust CPU per change over times.
 */
import { cpus, loadavg } from 'node:os';
import { mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { BIN, log, startRig } from './cdc-rig.js';
import { burstTable, lagTable, rssVerdict, summary, type Verdict } from './cdc-report.js';
import { scenarioA, scenarioB, scenarioC, scenarioD, scenarioE } from './cdc-scenarios.js';
import { readSettings, type ScenarioId } from './cdc-settings.js';

const settings = readSettings();
if (settings.profileDir) mkdirSync(settings.profileDir, { recursive: true });
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const TITLES: Record<ScenarioId, string> = {
  a: `(a) one transaction of ${fmt(settings.big)} inserts`,
  b: `(b) ${fmt(settings.small)} one-row transactions`,
  c: `(c) mixed burst of ~${fmt(settings.mixed)} changes (2 inserts, 2 updates, 1 delete a transaction) from ${settings.mixedClients} clients`,
  d: `(d) lag at ${settings.lagRates.map(fmt).join(' and ')} changes/s, ${settings.lagSeconds} s each, ${settings.lagTxnRows} changes a transaction`,
  e: `(e) Ferry's peak RSS through one ${fmt(settings.rssMb)} MB transaction (${fmt((settings.rssMb * 1024) / settings.rssRowKb)} rows of ${settings.rssRowKb} KB, TOASTed uncompressed)`,
};

const out: string[] = [];
const verdicts: Verdict[] = [];
const began = performance.now();
const print = (s: string) => {
  out.push(s);
  process.stdout.write(`${s}\n`);
};

const commit = (() => {
  try {
    const dir = dirname(dirname(BIN));
    const head = execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() ? '+changes' : '';
    return `${dir} at ${head}${dirty}`;
  } catch {
    return dirname(dirname(BIN));
  }
})();
const ferryEnv = Object.entries(process.env).filter(([k]) => k.startsWith('FERRY_') && !k.startsWith('FERRY_BENCH_')).map(([k, v]) => `${k}=${v}`);
print(`Ferry: ${commit}${ferryEnv.length ? `, with ${ferryEnv.join(' ')}` : ''}`);
print(`bench:cdc — ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} at start, runs ${settings.runs}, consumers ${settings.consumers.join(' & ')}` +
  `${Object.keys(settings.ferryConfig).length ? `, Ferry config override ${JSON.stringify(settings.ferryConfig)}` : ''}`);

for (const id of settings.scenarios) {
  log(`${TITLES[id]}…`);
  const t0 = performance.now();
  const rig = await startRig({ targetStats: settings.targetStats });
  try {
    const ctx = { rig, settings, scenario: id };
    if (id === 'd') {
      const { results, errors } = await scenarioD(ctx);
      const t = lagTable(TITLES[id], results, errors, new Map([[10_000, 0.1], [50_000, 1]]));
      print(t.text);
      verdicts.push(...t.verdicts);
    } else if (id === 'e') {
      const { results, errors } = await scenarioE(ctx);
      print(burstTable(TITLES[id], results, errors).text);
      const before = results.map((r) => r.rssBefore?.toFixed(0)).join(', ');
      print(`  VmHWM once streaming, before the burst: ${before} MB`);
      const v = rssVerdict(results, errors, 150);
      if (v) verdicts.push(v);
    } else {
      const run = id === 'a' ? scenarioA : id === 'b' ? scenarioB : scenarioC;
      const { results, errors } = await run(ctx);
      const t = burstTable(TITLES[id], results, errors, id === 'a' ? 1.0 : 1.2);
      print(t.text);
      if (t.verdict) verdicts.push({ ...t.verdict, label: `${TITLES[id].slice(0, 3)} throughput Ferry/native` });
    }
  } finally {
    await rig.close();
  }
  print(`  (${((performance.now() - t0) / 1000).toFixed(0)} s, load average ${loadavg()[0]!.toFixed(1)})`);
}
print(summary(verdicts));
print(`total ${((performance.now() - began) / 1000).toFixed(0)} s`);
