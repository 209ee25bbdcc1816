/**
 * What `npm run bench:cdc` runs, from the environment. The defaults are the sizes of issue 10; every size scales
 * with FERRY_BENCH_SCALE (0.02 runs each scenario in seconds), and any single size can be set on its own.
 */

export type ScenarioId = 'a' | 'b' | 'c' | 'd' | 'e';
export type ConsumerKind = 'ferry' | 'native';

export interface BenchSettings {
  runs: number;
  scenarios: ScenarioId[];
  consumers: ConsumerKind[];
  /** (a) rows of the one big transaction. */
  big: number;
  /** (b) one-row transactions. */
  small: number;
  /** (c) changes of the mixed burst, and its concurrent clients. */
  mixed: number;
  mixedClients: number;
  /** (d) rates (changes/s), seconds each is sustained, rows per source transaction. */
  lagRates: number[];
  lagSeconds: number;
  lagTxnRows: number;
  /** (e) size of the big transaction, in MB of row values. */
  rssMb: number;
  /** Runs of (e) (default: runs): its figure is a peak of Ferry alone, no ratio, and one run is the slowest of all. */
  rssRuns: number;
  rssRowKb: number;
  /** Poll interval of the target for visibility (ms). */
  pollMs: number;
  /** Merged into the Ferry config of every run (JSON): e.g. `{"cdc":{"batchMs":50}}` or a source option. */
  ferryConfig: Record<string, unknown>;
  /** Write a CPU profile of every Ferry process (node --cpu-prof) into this directory. */
  profileDir?: string;
  /** Extra node flags for the Ferry process (space separated). */
  ferryNodeFlags: string[];
  /** Load pg_stat_statements on the target and print Ferry's statements after each burst. */
  targetStats: boolean;
}

const SCENARIO_NAMES: Record<string, ScenarioId> = { big: 'a', small: 'b', mixed: 'c', lag: 'd', rss: 'e' };

function num(name: string, fallback: number, scale = 1, min = 1): number {
  const raw = process.env[name];
  if (raw !== undefined && raw !== '') {
    const v = Number(raw);
    if (!Number.isFinite(v) || v <= 0) throw new Error(`${name}=${raw}: expected a positive number`);
    return v;
  }
  return Math.max(min, Math.round(fallback * scale));
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const scale = Number(env.FERRY_BENCH_SCALE ?? 1);
  if (!(scale > 0)) throw new Error(`FERRY_BENCH_SCALE=${env.FERRY_BENCH_SCALE}: expected a positive number`);
  const scenarios = (env.FERRY_BENCH_SCENARIOS ?? 'a,b,c,d,e')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => {
      const id = (SCENARIO_NAMES[s.toLowerCase()] ?? s.toLowerCase()) as ScenarioId;
      if (!['a', 'b', 'c', 'd', 'e'].includes(id)) throw new Error(`FERRY_BENCH_SCENARIOS: unknown scenario ${s} (a-e, or big, small, mixed, lag, rss)`);
      return id;
    });
  const consumers = (env.FERRY_BENCH_CONSUMERS ?? 'ferry,native').split(/[\s,]+/).filter(Boolean) as ConsumerKind[];
  for (const c of consumers) if (c !== 'ferry' && c !== 'native') throw new Error(`FERRY_BENCH_CONSUMERS: unknown consumer ${c}`);
  const lagSeconds = num('FERRY_BENCH_LAG_SECONDS', Number(env.FERRY_BENCH_SUSTAINED_SECONDS ?? 30), scale, 3);
  return {
    runs: num('FERRY_BENCH_RUNS', 3),
    scenarios: [...new Set(scenarios)].sort(),
    consumers,
    big: num('FERRY_BENCH_BIG', 1_000_000, scale, 1000),
    small: num('FERRY_BENCH_SMALL', 200_000, scale, 100),
    mixed: num('FERRY_BENCH_MIXED', 200_000, scale, 400),
    mixedClients: num('FERRY_BENCH_MIXED_CLIENTS', 8),
    lagRates: (env.FERRY_BENCH_LAG_RATES ?? '10000,50000').split(/[\s,]+/).filter(Boolean).map(Number),
    lagSeconds,
    lagTxnRows: num('FERRY_BENCH_LAG_TXN_ROWS', 100),
    rssMb: num('FERRY_BENCH_RSS_MB', 1024, scale, 8),
    rssRowKb: num('FERRY_BENCH_RSS_ROW_KB', 4),
    rssRuns: num('FERRY_BENCH_RSS_RUNS', num('FERRY_BENCH_RUNS', 3)),
    pollMs: num('FERRY_BENCH_POLL_MS', 5),
    ferryConfig: env.FERRY_BENCH_FERRY_CONFIG ? (JSON.parse(env.FERRY_BENCH_FERRY_CONFIG) as Record<string, unknown>) : {},
    profileDir: env.FERRY_BENCH_PROFILE || undefined,
    ferryNodeFlags: (env.FERRY_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean),
    targetStats: env.FERRY_BENCH_TARGET_STATS === '1',
  };
}

/** Plain-object deep merge (the override wins; arrays are replaced). */
export function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
