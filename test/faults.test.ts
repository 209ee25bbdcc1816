/**
 * The short fault suite (the long one is `npm run test:faults`): against real PostgreSQL clusters and the real CLI,
 * under a concurrent workload of inserts, updates (TOASTed and not), key moves and deletes from four clients:
 * kill -9 of `ferry run` during the snapshot and while streaming; the target stopped for 10 s while streaming; the
 * source restarted while streaming. After each, every table is compared on both sides (row count and md5 of the
 * ordered rows, then a diff by key), and nothing may be lost or duplicated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { compareDatabases, differingRows, formatComparison } from './support/compare.js';
import { killAll } from './support/ferry-cli.js';
import { withClient } from './support/workload.js';
import { seedFromEnv } from './support/rng.js';
import { formatReport, killScenario, sourceRestartScenario, startFaultEnv, targetOutageScenario, type FaultEnv, type FaultReport } from './faults/scenarios.js';

const seed = seedFromEnv();
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const log = (line: string) => process.stderr.write(`[faults ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
let env: FaultEnv;
beforeAll(async () => {
  env = await startFaultEnv();
});
afterAll(async () => {
  killAll();
  await env?.close();
});

function check(r: FaultReport) {
  // Printed either way: the seed replays a failure, the figures are what the suite measures.
  process.stderr.write(`${formatReport(r)}\n`);
  expect(r.failures, formatReport(r)).toEqual([]);
  expect(r.lost).toBe(0);
  expect(r.duplicated).toBe(0);
  expect(r.equal).toBe(true);
}

describe(`faults (seed ${seed}; FERRY_FAULT_SEED=${seed} replays it)`, () => {
  it('the comparer sees a lost, a duplicated and a changed row (and equal tables as equal)', async () => {
    await Promise.all([env.source.createDatabase('cmp_src'), env.target.createDatabase('cmp_dst')]);
    const [src, dst] = [env.source.urlFor('cmp_src'), env.target.urlFor('cmp_dst')];
    const ddl = `CREATE SCHEMA fault; CREATE TABLE fault.k (a int, b text, v text, PRIMARY KEY (a, b)); CREATE TABLE fault.nokey (v text);
                 INSERT INTO fault.k SELECT g, 'x' || g, md5(g::text) FROM generate_series(1, 100) g; INSERT INTO fault.nokey VALUES ('p'), ('q')`;
    await withClient(src, (c) => c.query(ddl));
    await withClient(dst, (c) => c.query(ddl));
    expect((await compareDatabases(src, dst, { schemas: ['fault'] })).equal).toBe(true);
    await withClient(dst, (c) => c.query(`DELETE FROM fault.k WHERE a = 7; INSERT INTO fault.k VALUES (500, 'y', 'extra');
      UPDATE fault.k SET v = 'changed' WHERE a = 9; INSERT INTO fault.nokey VALUES ('q')`));
    const cmp = await compareDatabases(src, dst, { schemas: ['fault'] });
    expect(cmp.equal).toBe(false);
    expect({ lost: cmp.lost, duplicated: cmp.duplicated, changed: cmp.changed }).toEqual({ lost: 1, duplicated: 2, changed: 1 });
    expect(formatComparison(cmp)).toMatch(/fault\.k .*lost 1, duplicated 1, changed 1 \(lost \(7,x7\)/);
    expect(formatComparison(cmp)).toMatch(/fault\.nokey .*duplicated 1/);
    const rows = await differingRows(src, dst, cmp);
    expect(rows).toContain(`fault.k (7,x7): source (7,x7,${md5('7')}) | target (none)`);
    expect(rows).toContain(`fault.k (9,x9): source (9,x9,${md5('9')}) | target (9,x9,changed)`);
  });

  it('kill -9 of ferry run during the snapshot and while streaming: converges, nothing lost or duplicated', async () => {
    const r = await killScenario(env, { seed, kills: 3, snapshotKills: 2, seedRows: 20_000, blindShare: 0, pauseMs: 40, log });
    check(r);
    expect(r.kills).toBe(3);
    expect(r.restarts).toBe(3);
  }, 240_000);

  it('target stopped for 10 s while streaming: the stream resumes by itself and converges', async () => {
    check(await targetOutageScenario(env, { seed: seed + 1, downSeconds: 10, seedRows: 3000, pauseMs: 40, log }));
  }, 180_000);

  it('source restarted while streaming: its shutdown is not held up, the stream resumes and converges', async () => {
    check(await sourceRestartScenario(env, { seed: seed + 2, seedRows: 3000, pauseMs: 40, log }));
  }, 180_000);
});
