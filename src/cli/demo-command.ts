/**
 * `npm start`: a whole migration with no database of the user's own. Two embedded PostgreSQL servers (binaries from
 * npm), a sample shop schema on the source, `ferry run` to the target with live progress, then a check that every
 * table is identical on both sides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../config/load.js';
import { createSampleSchema } from '../demo/sample-schema.js';
import { startCluster, type Cluster } from '../embedded/cluster.js';
import { formatSummary } from '../progress/summary.js';
import { runFlow } from '../runtime/local/run-flow.js';
import { compareTables } from '../demo/compare.js';
import { progressFor } from './sinks.js';

export async function demoCommand(opts: { scale: number }): Promise<number> {
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const clusters: Cluster[] = [];
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const cleanup = async () => {
    await Promise.allSettled(clusters.map((c) => c.stop()));
    rmSync(stateDir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  try {
    say('ferry demo: starting two embedded PostgreSQL servers…');
    const [source, target] = await Promise.all([startCluster({ logical: true }), startCluster()]);
    clusters.push(source, target);
    await source.createDatabase('shop');
    await target.createDatabase('shop_copy');
    say(`ferry demo: filling the source with a sample shop (scale ${opts.scale})…`);
    const client = new pg.Client(source.urlFor('shop'));
    await client.connect();
    const t0 = Date.now();
    await createSampleSchema(client, { scale: opts.scale });
    await client.end();
    say(`ferry demo: source ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; migrating…`);

    const config = parseConfig({
      name: 'demo',
      source: { url: source.urlFor('shop') },
      target: { url: target.urlFor('shop_copy') },
      include: ['shop.*'],
      rowsPerRange: 100_000,
      batchRows: 25_000,
      state: { path: join(stateDir, 'state.db') },
    });
    const { sink, stats } = progressFor();
    const result = await runFlow({ config, progress: sink });
    sink.close();
    process.stdout.write(`${formatSummary(stats)}\n`);
    for (const w of result.warnings) say(`warning: ${w}`);

    say('ferry demo: comparing every table on both sides (row count and checksum computed in each database)…');
    const diffs = await compareTables(source.urlFor('shop'), target.urlFor('shop_copy'), 'shop');
    for (const d of diffs) say(`  ${d.ok ? 'identical' : 'DIFFERENT'}  ${d.table}  ${d.rows} rows`);
    const ok = diffs.every((d) => d.ok);
    say(ok ? 'ferry demo: done, the copy is identical.' : 'ferry demo: the copy differs (see above)');
    return ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    await cleanup();
  }
}
