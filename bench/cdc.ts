/**
 * `npm run bench:cdc`: a benchmark, not a test. Each scenario runs on fresh embedded PostgreSQL clusters, once with
 * Ferry streaming (`ferry run`, mode snapshot+cdc, as a child process) and once with native logical replication
 * (CREATE SUBSCRIPTION into another cluster), on the same generated burst. Reported per scenario: changes/s from the
 * burst's start until its last change is applied on the target (the burst's own generation time, identical for
 * both, is printed too), Ferry's peak RSS, and lag percentiles under a sustained load.
 *
 *   FERRY_BENCH_BIG=1000000 FERRY_BENCH_SMALL=200000 npm run bench:cdc
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { startFerry, waitFor, writeConfig } from '../test/support/ferry-cli.js';

const BIG = Number(process.env.FERRY_BENCH_BIG ?? 1_000_000);
const SMALL = Number(process.env.FERRY_BENCH_SMALL ?? 200_000);
const SUSTAINED_SECONDS = Number(process.env.FERRY_BENCH_SUSTAINED_SECONDS ?? 20);

const DDL = `CREATE TABLE public.events (id bigint PRIMARY KEY, a int, t text, n numeric(14,4), created timestamptz DEFAULT clock_timestamp(), j jsonb);
             CREATE TABLE public.marker (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())`;
const BIG_BURST = `INSERT INTO public.events (id, a, t, n, j) SELECT g, g % 1000, 'row ' || g || ' ' || md5(g::text), g / 7.0, jsonb_build_object('g', g) FROM generate_series(1, ${BIG}) g`;
const SMALL_PROC = `CREATE PROCEDURE small_burst(n int) LANGUAGE plpgsql AS $$
  BEGIN FOR i IN 1..n LOOP
    INSERT INTO public.events (id, a, t, n, j) VALUES (10000000 + i, i % 1000, 'small ' || i, i / 3.0, '{"k": 1}');
    COMMIT;
  END LOOP; END $$`;

const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client(url);
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

async function markerApplied(url: string, id: number): Promise<boolean> {
  const r = await sql(url, 'SELECT 1 FROM public.marker WHERE id = $1', [id]).catch(() => ({ rowCount: 0 }));
  return (r.rowCount ?? 0) > 0;
}

interface Consumer {
  name: string;
  targetUrl: string;
  peakRssMb?: () => number;
  stop(): Promise<void>;
}

async function withPair<T>(fn: (source: Cluster, target: Cluster) => Promise<T>): Promise<T> {
  const [source, target] = await Promise.all([startCluster({ logical: true }), startCluster()]);
  try {
    await Promise.all([source.createDatabase('src'), target.createDatabase('dst')]);
    await sql(source.urlFor('src'), DDL);
    await sql(source.urlFor('src'), SMALL_PROC);
    return await fn(source, target);
  } finally {
    await Promise.allSettled([source.stop(), target.stop()]);
  }
}

async function startFerryConsumer(source: Cluster, target: Cluster): Promise<Consumer> {
  const cfg = writeConfig({
    name: 'bench', source: { url: source.urlFor('src') }, target: { url: target.urlFor('dst') }, include: ['public.*'],
    mode: 'snapshot+cdc', workers: 2,
  });
  const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'warn' });
  const pid = run.child.pid!;
  const url = target.urlFor('dst');
  // The streamer creates its position table when it starts streaming.
  await waitFor('ferry to stream', async () => (await sql(url, `SELECT to_regclass('_ferry.cdc_position') t`).catch(() => undefined))?.rows[0]?.t != null, 120_000);
  return {
    name: 'ferry',
    targetUrl: url,
    peakRssMb: () => {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    },
    async stop() {
      run.child.kill('SIGTERM');
      await run.exited;
    },
  };
}

async function startNativeConsumer(source: Cluster, target: Cluster): Promise<Consumer> {
  const url = target.urlFor('dst');
  await sql(url, DDL);
  await sql(source.urlFor('src'), 'CREATE PUBLICATION native FOR TABLE public.events, public.marker');
  await sql(url, `CREATE SUBSCRIPTION native CONNECTION 'host=127.0.0.1 port=${source.port} user=postgres password=postgres dbname=src' PUBLICATION native WITH (copy_data = false)`);
  await waitFor('the subscription to start', async () => (await sql(url, `SELECT count(*)::int n FROM pg_stat_subscription WHERE pid IS NOT NULL`)).rows[0].n > 0, 60_000);
  return {
    name: 'native',
    targetUrl: url,
    async stop() {
      await sql(url, 'DROP SUBSCRIPTION native');
    },
  };
}

/** Run `burst` on the source, then a marker transaction; time until the marker is on the consumer's target. */
async function timeBurst(source: Cluster, consumer: Consumer, burst: string, marker: number): Promise<{ generated: number; applied: number }> {
  const t0 = performance.now();
  await sql(source.urlFor('src'), burst);
  const generated = (performance.now() - t0) / 1000;
  await sql(source.urlFor('src'), `INSERT INTO public.marker (id) VALUES (${marker})`);
  await waitFor('the burst to be applied', () => markerApplied(consumer.targetUrl, marker), 900_000);
  return { generated, applied: (performance.now() - t0) / 1000 };
}

/** 10 k changes/s as 100 transactions/s of 100 rows; lag = target apply time minus source commit time, per row. */
async function sustained(source: Cluster, consumer: Consumer): Promise<{ p50: number; p99: number; max: number; rate: number }> {
  // A target-only column stamped when each row is applied (neither consumer writes it).
  await sql(consumer.targetUrl, 'ALTER TABLE public.events ADD COLUMN applied_at timestamptz DEFAULT clock_timestamp()');
  const c = new pg.Client(source.urlFor('src'));
  await c.connect();
  const start = performance.now();
  let next = 20_000_000;
  let sent = 0;
  while (performance.now() - start < SUSTAINED_SECONDS * 1000) {
    const tick = performance.now();
    await c.query(`INSERT INTO public.events (id, a, t) SELECT g, 1, 'sustained' FROM generate_series(${next}, ${next + 99}) g`);
    next += 100;
    sent += 100;
    const wait = 10 - (performance.now() - tick);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const rate = sent / ((performance.now() - start) / 1000);
  await c.query(`INSERT INTO public.marker (id) VALUES (999)`);
  await c.end();
  await waitFor('the sustained load to be applied', () => markerApplied(consumer.targetUrl, 999), 300_000);
  // Source commit time ~ `created` (clock_timestamp at insert; the 100-row statement commits right after).
  const { rows } = await sql(consumer.targetUrl, `
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) p99, max(lag) mx
    FROM (SELECT extract(epoch FROM applied_at - created) AS lag FROM public.events WHERE id >= 20000000) s`);
  return { p50: Number(rows[0].p50), p99: Number(rows[0].p99), max: Number(rows[0].mx), rate };
}

async function scenario(kind: 'ferry' | 'native') {
  return withPair(async (source, target) => {
    const consumer = kind === 'ferry' ? await startFerryConsumer(source, target) : await startNativeConsumer(source, target);
    try {
      log(`${kind}: one transaction of ${fmt(BIG)} inserts…`);
      const big = await timeBurst(source, consumer, BIG_BURST, 1);
      const rss = consumer.peakRssMb?.();
      log(`${kind}: ${fmt(SMALL)} one-row transactions…`);
      const small = await timeBurst(source, consumer, `CALL small_burst(${SMALL})`, 2);
      log(`${kind}: sustained load for ${SUSTAINED_SECONDS} s…`);
      const lag = await sustained(source, consumer);
      return { big, small, rss, lag };
    } finally {
      await consumer.stop();
    }
  });
}

const ferry = await scenario('ferry');
const native = await scenario('native');
const rate = (n: number, t: number) => n / t;
const row = (label: string, n: number, f: { generated: number; applied: number }, nv: { generated: number; applied: number }) =>
  `  ${label.padEnd(34)} ferry ${fmt(rate(n, f.applied)).padStart(9)}/s   native ${fmt(rate(n, nv.applied)).padStart(9)}/s   ratio ${(nv.applied / f.applied).toFixed(2)}x   (burst generated in ${f.generated.toFixed(1)} s / ${nv.generated.toFixed(1)} s)`;
process.stdout.write(
  [
    'CDC apply rate, from the start of the burst until its last change is on the target (2 cores, both in one run):',
    row(`1 transaction of ${fmt(BIG)} inserts`, BIG, ferry.big, native.big),
    row(`${fmt(SMALL)} one-row transactions`, SMALL, ferry.small, native.small),
    `Ferry peak RSS (VmHWM) through the ${fmt(BIG)}-row transaction: ${ferry.rss?.toFixed(0)} MB (goal < 300 MB)`,
    `Lag at ~${fmt(ferry.lag.rate)} changes/s for ${SUSTAINED_SECONDS} s: ferry p50 ${(ferry.lag.p50 * 1000).toFixed(0)} ms, p99 ${(ferry.lag.p99 * 1000).toFixed(0)} ms, max ${(ferry.lag.max * 1000).toFixed(0)} ms` +
      ` | native p50 ${(native.lag.p50 * 1000).toFixed(0)} ms, p99 ${(native.lag.p99 * 1000).toFixed(0)} ms (goal: ferry p99 < 1 s)`,
  ].join('\n') + '\n',
);
