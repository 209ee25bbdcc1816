/**
 * `npm run bench:snapshot`: a benchmark, not a test. Copies a generated 5 M-row table with Ferry (2 workers) and
 * with `psql COPY … TO STDOUT (FORMAT binary) | psql COPY … FROM STDIN (FORMAT binary)` in the same run, between
 * the same two embedded PostgreSQL servers, into identical tables (with their primary key), and prints both rates.
 *
 *   FERRY_BENCH_ROWS=1000000 npm run bench:snapshot    # a smaller table
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseConfig } from '../src/config/load.js';
import { silentProgress } from '../src/core/progress.js';
import { startCluster } from '../src/embedded/cluster.js';
import { runFlow } from '../src/runtime/local/run-flow.js';

const ROWS = Number(process.env.FERRY_BENCH_ROWS ?? 5_000_000);
const DDL = `CREATE TABLE public.bench (id bigint PRIMARY KEY, a int, b int, t text, n numeric(14,4), ts timestamptz, j jsonb)`;

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

function psqlPipe(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = spawn('psql', [from, '-qAt', '-c', 'COPY public.bench TO STDOUT (FORMAT binary)'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const into = spawn('psql', [to, '-qAt', '-c', 'COPY public.bench FROM STDIN (FORMAT binary)'], { stdio: ['pipe', 'ignore', 'inherit'] });
    out.stdout.pipe(into.stdin);
    let left = 2;
    const done = (code: number | null) => {
      if (code !== 0) reject(new Error(`psql exited with ${code}`));
      else if (--left === 0) resolve();
    };
    out.on('exit', done);
    into.on('exit', done);
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main() {
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const hasPsql = spawnSync('psql', ['--version']).status === 0;
  const [source, target] = await Promise.all([startCluster({ logical: true }), startCluster()]);
  try {
    await Promise.all([source.createDatabase('bench'), target.createDatabase('ferry'), target.createDatabase('psql')]);
    const src = source.urlFor('bench');
    log(`generating ${fmt(ROWS)} rows…`);
    await sql(src, DDL);
    await sql(
      src,
      `INSERT INTO public.bench SELECT g, g % 1000, (g * 7) % 100000, 'row ' || g || ' ' || md5(g::text),
         (g % 100000) / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
         jsonb_build_object('id', g, 'tag', 'bench', 'vals', jsonb_build_array(g % 10, g % 100))
       FROM generate_series(1, ${ROWS}) g`,
    );
    await sql(src, 'VACUUM ANALYZE public.bench');
    const size = (await sql(src, `SELECT pg_size_pretty(pg_table_size('public.bench')) s`)).rows[0].s as string;
    log(`source table: ${size}`);

    let psqlRate: number | undefined;
    if (hasPsql) {
      await sql(target.urlFor('psql'), DDL);
      const t0 = performance.now();
      await psqlPipe(src, target.urlFor('psql'));
      psqlRate = ROWS / ((performance.now() - t0) / 1000);
    } else {
      log('psql not found (apt-get install postgresql-client): baseline skipped');
    }

    const config = parseConfig({
      name: 'bench',
      source: { url: src },
      target: { url: target.urlFor('ferry') },
      include: ['public.bench'],
      workers: 2,
      rowsPerRange: Math.ceil(ROWS / 16),
      batchRows: 100_000,
      state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-bench-')), 'state.db') },
    });
    const t1 = performance.now();
    await runFlow({ config, progress: silentProgress });
    const ferrySeconds = (performance.now() - t1) / 1000;
    const ferryRate = ROWS / ferrySeconds;
    const copied = (await sql(target.urlFor('ferry'), 'SELECT count(*)::int n FROM public.bench')).rows[0].n as number;
    if (copied !== ROWS) throw new Error(`ferry copied ${copied} rows, expected ${ROWS}`);

    const lines = [
      `snapshot of ${fmt(ROWS)} rows (${size}), 2 cores`,
      `  ferry run (2 workers, plan + copy + finalize)   ${fmt(ferryRate).padStart(10)} rows/s   ${ferrySeconds.toFixed(1)} s`,
    ];
    if (psqlRate) {
      lines.push(`  psql binary COPY | psql binary COPY            ${fmt(psqlRate).padStart(10)} rows/s   ${(ROWS / psqlRate).toFixed(1)} s`);
      lines.push(`  ratio ferry / psql pipe: ${(ferryRate / psqlRate).toFixed(2)}x`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await Promise.allSettled([source.stop(), target.stop()]);
  }
}

await main();
