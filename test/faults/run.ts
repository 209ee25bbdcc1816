/**
 * `npm run test:faults`: the long fault suite against real servers. Prints, per scenario, kills, restarts, the time
 * to converge after the last fault and the rows lost and duplicated, and exits 1 if any scenario failed.
 *
 *   FERRY_FAULT_KILLS=50 FERRY_FAULT_OUTAGE_SECONDS=30 FERRY_FAULT_SEED=123 FERRY_FAULT_ROWS=60000 npm run test:faults
 *   FERRY_FAULT_SCENARIOS=kills,target,source   (default: all three)
 */
import '../support/setup.js';
import { seedFromEnv } from '../support/rng.js';
import { killAll } from '../support/ferry-cli.js';
import { formatReport, killScenario, sourceRestartScenario, startFaultEnv, targetOutageScenario, type FaultReport } from './scenarios.js';

const kills = Number(process.env.FERRY_FAULT_KILLS ?? 50);
const outage = Number(process.env.FERRY_FAULT_OUTAGE_SECONDS ?? 30);
const seedRows = Number(process.env.FERRY_FAULT_ROWS ?? 60_000);
const which = new Set((process.env.FERRY_FAULT_SCENARIOS ?? 'kills,target,source').split(','));
const seed = seedFromEnv();
const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

log(`fault suite: seed ${seed} (FERRY_FAULT_SEED=${seed} replays the same choices), ${kills} kills, target down ${outage} s, ${seedRows} seed rows`);
const env = await startFaultEnv();
const reports: FaultReport[] = [];
try {
  if (which.has('kills')) reports.push(await killScenario(env, { seed, kills, seedRows, log }));
  if (which.has('target')) reports.push(await targetOutageScenario(env, { seed: seed + 1, downSeconds: outage, seedRows: 5000, log }));
  if (which.has('source')) reports.push(await sourceRestartScenario(env, { seed: seed + 2, seedRows: 5000, log }));
} finally {
  killAll();
  const t0 = Date.now();
  await env.close();
  log(`clusters removed (${Date.now() - t0} ms)`);
}
process.stdout.write(`\n${reports.map(formatReport).join('\n\n')}\n`);
process.exitCode = reports.every((r) => r.failures.length === 0) ? 0 : 1;
