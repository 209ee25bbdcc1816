/** A source (wal_level=logical) and a target cluster, each with one database, for a test file. */
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { killAll } from './ferry-cli.js';
import { rawTypes } from '../../src/adapters/postgres/connect.js';
import { startCluster, type Cluster } from '../../src/embedded/cluster.js';

export interface PgPair {
  sourceUrl: string;
  targetUrl: string;
  source: pg.Client;
  target: pg.Client;
  clusters: Cluster[];
  stop(): Promise<void>;
}

export async function startPair(): Promise<PgPair> {
  const [s, t] = await Promise.all([startCluster({ logical: true }), startCluster()]);
  await Promise.all([s.createDatabase('src'), t.createDatabase('dst')]);
  const sourceUrl = s.urlFor('src');
  const targetUrl = t.urlFor('dst');
  const source = new pg.Client({ connectionString: sourceUrl, types: rawTypes });
  const target = new pg.Client({ connectionString: targetUrl, types: rawTypes });
  await Promise.all([source.connect(), target.connect()]);
  return {
    sourceUrl,
    targetUrl,
    source,
    target,
    clusters: [s, t],
    async stop() {
      await Promise.allSettled([source.end(), target.end()]);
      await Promise.allSettled([s.stop(), t.stop()]);
    },
  };
}

/** A fresh database pair on the same clusters, so tests in one file do not share tables. */
export async function freshDatabases(pair: PgPair, name: string): Promise<{ sourceUrl: string; targetUrl: string }> {
  const [s, t] = pair.clusters as [Cluster, Cluster];
  await Promise.all([s.createDatabase(`${name}_src`), t.createDatabase(`${name}_dst`)]);
  return { sourceUrl: s.urlFor(`${name}_src`), targetUrl: t.urlFor(`${name}_dst`) };
}

export async function query<T extends pg.QueryResultRow = Record<string, string>>(url: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  await c.connect();
  try {
    return (await c.query<T>(sql)).rows;
  } finally {
    await c.end();
  }
}

/**
 * One pair of clusters for a test file: started before its tests, stopped after them, with any ferry child
 * process still running killed first (a failed test must not leave a streamer holding the servers open).
 */
export function usePgPair(): () => PgPair {
  let pair: PgPair | undefined;
  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => {
    killAll();
    await pair?.stop();
  });
  return () => {
    if (!pair) throw new Error('the cluster pair is not started yet (use it inside a test or hook)');
    return pair;
  };
}
