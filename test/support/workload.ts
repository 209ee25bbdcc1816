/**
 * A concurrent write workload for fault tests: several pg clients, each running short transactions of inserts,
 * updates of a small column (which leave a TOASTed body alone, so pgoutput sends it as "unchanged"), updates of the
 * TOASTed body itself, key moves (UPDATE of the primary key) and deletes, on a bigint-keyed and a composite-keyed
 * table. Bounded in transactions and in time, paced so that two shared cores keep up. Clients survive the source
 * going away: a broken connection is reopened with backoff until the workload is stopped.
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRng, type Rng } from './rng.js';

/** The tables the workload writes. `fault.marker` is written only by the fault driver (see `writeMarker`). */
export const WORKLOAD_SCHEMA = `
  CREATE SCHEMA fault;
  CREATE TABLE fault.accounts (id bigint PRIMARY KEY, owner int NOT NULL, balance bigint NOT NULL, note text, body text,
                               touched timestamptz NOT NULL DEFAULT now());
  -- EXTERNAL: bodies above about 2 kB are stored out of line (uncompressed), so they really are TOASTed.
  ALTER TABLE fault.accounts ALTER COLUMN body SET STORAGE EXTERNAL;
  CREATE TABLE fault.lines (order_id int, line_no int, qty int NOT NULL, sku text NOT NULL, PRIMARY KEY (order_id, line_no));
  CREATE TABLE fault.marker (id int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp());
`;

/** Create the schema and seed it: `rows` accounts (one in five with a 3.2 kB TOASTed body) and `rows` order lines. */
export async function seedWorkload(url: string, rows: number): Promise<void> {
  const orders = Math.max(1, Math.ceil(rows / 3));
  await withClient(url, (c) =>
    c.query(`${WORKLOAD_SCHEMA}
      INSERT INTO fault.accounts (id, owner, balance, note, body)
        SELECT g, g % 1000, g * 10, 'seed', CASE WHEN g % 5 = 0 THEN repeat(md5(g::text), 100) END FROM generate_series(1, ${rows}) g;
      INSERT INTO fault.lines SELECT o, l, (o + l) % 9, 'sku' || o FROM generate_series(1, ${orders}) o, generate_series(1, 3) l;
      ANALYZE;`),
  );
}

export interface WorkloadOptions {
  url: string;
  seed: number;
  /** Concurrent clients (default 4). */
  clients?: number;
  /** Stop after this many committed transactions in all (default: unbounded, until `stop` or `maxMs`). */
  maxTransactions?: number;
  /** Stop after this long (default 10 minutes: a forgotten workload must end). */
  maxMs?: number;
  /** Pause of each client between transactions (default 20 ms). */
  pauseMs?: number;
}

export interface WorkloadStats {
  committed: number;
  /** Transactions rolled back by the server (deadlock, a key taken meanwhile): harmless, counted for the report. */
  aborted: number;
  /** Connection losses (the source restarted); each was followed by a reconnect. */
  connectionErrors: number;
  ops: Record<OpKind, number>;
  /** The last few errors that were neither aborts nor connection losses (there should be none). */
  unexpected: string[];
}

type OpKind = 'insert' | 'updateSmall' | 'updateToast' | 'updateRange' | 'keyMove' | 'delete' | 'lineInsert' | 'lineUpdate' | 'lineMove' | 'lineDelete';

const WEIGHTS: Record<OpKind, number> = {
  insert: 20, updateSmall: 20, updateToast: 8, updateRange: 4, keyMove: 8, delete: 10,
  lineInsert: 8, lineUpdate: 10, lineMove: 6, lineDelete: 6,
};

export interface Workload {
  stats: WorkloadStats;
  /** Resolves when every client has stopped (bounded, or stopped). */
  done: Promise<WorkloadStats>;
  /** Stop the clients after their current transaction; resolves with the final stats. */
  stop(): Promise<WorkloadStats>;
}

export async function startWorkload(opts: WorkloadOptions): Promise<Workload> {
  const rng = seededRng(opts.seed);
  const clients = opts.clients ?? 4;
  const pauseMs = opts.pauseMs ?? 20;
  const deadline = Date.now() + (opts.maxMs ?? 600_000);
  const max = opts.maxTransactions ?? Infinity;
  // Keys are handed out by one counter in this process, so no two clients ever insert or move to the same key.
  const top = await withClient(opts.url, async (c) => {
    const r = await c.query<{ a: string; o: string }>(
      `SELECT coalesce(max(id), 0)::text a, (SELECT coalesce(max(order_id), 0)::text FROM fault.lines) o FROM fault.accounts`,
    );
    return { accounts: Number(r.rows[0]!.a), orders: Number(r.rows[0]!.o) };
  });
  const keys = { nextId: top.accounts + 1, nextOrder: top.orders + 1, nextLine: 1000 };
  const stats: WorkloadStats = {
    committed: 0, aborted: 0, connectionErrors: 0, unexpected: [],
    ops: Object.fromEntries(Object.keys(WEIGHTS).map((k) => [k, 0])) as Record<OpKind, number>,
  };
  let stopped = false;
  const running = () => !stopped && Date.now() < deadline && stats.committed < max;

  const client = async (r: Rng) => {
    let c: pg.Client | undefined;
    let backoff = 100;
    while (running()) {
      if (!c) {
        c = await connect(opts.url).catch(() => undefined);
        if (!c) {
          await sleep(backoff);
          backoff = Math.min(2000, backoff * 2);
          continue;
        }
        backoff = 100;
      }
      const n = r.int(1, 4);
      const kinds: OpKind[] = Array.from({ length: n }, () => r.weighted(WEIGHTS));
      try {
        await c.query('BEGIN');
        for (const k of kinds) await c.query(...statement(k, r, keys));
        await c.query('COMMIT');
        stats.committed++;
        for (const k of kinds) stats.ops[k]++;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (isConnectionError(err)) {
          stats.connectionErrors++;
          await c.end().catch(() => {});
          c = undefined;
        } else {
          if (code === '40P01' || code === '40001' || code === '23505' || code === '55P03') stats.aborted++;
          else if (stats.unexpected.length < 10) stats.unexpected.push(`${code ?? ''} ${(err as Error).message}`);
          await c.query('ROLLBACK').catch(() => {});
        }
      }
      if (pauseMs > 0) await sleep(r.int(0, 2 * pauseMs));
    }
    await c?.end().catch(() => {});
  };

  const done = Promise.all(Array.from({ length: clients }, () => client(rng.fork()))).then(() => stats);
  return {
    stats,
    done,
    stop: async () => {
      stopped = true;
      return done;
    },
  };
}

function statement(kind: OpKind, r: Rng, keys: { nextId: number; nextOrder: number; nextLine: number }): [string, unknown[]] {
  const anyId = () => r.int(1, keys.nextId - 1);
  const anyOrder = () => r.int(1, keys.nextOrder - 1);
  switch (kind) {
    case 'insert': {
      const id = keys.nextId++;
      const toasted = r.next() < 0.3;
      return [`INSERT INTO fault.accounts (id, owner, balance, note, body) VALUES ($1::bigint, $2, $3, 'new', ${toasted ? `repeat(md5($1::bigint::text), 100)` : 'NULL'})`,
        [id, r.int(0, 999), r.int(0, 1e6)]];
    }
    case 'updateSmall': // the TOASTed body, if any, is left alone: pgoutput sends it as "unchanged"
      return [`UPDATE fault.accounts SET balance = balance + $2, touched = now() WHERE id = $1`, [anyId(), r.int(1, 100)]];
    case 'updateToast':
      return [`UPDATE fault.accounts SET body = repeat(md5(random()::text), $2) WHERE id = $1`, [anyId(), r.int(70, 200)]];
    case 'updateRange': {
      const from = anyId();
      return [`UPDATE fault.accounts SET note = $3 WHERE id BETWEEN $1 AND $2`, [from, from + 20, `r${r.int(0, 1e6)}`]];
    }
    case 'keyMove':
      return [`UPDATE fault.accounts SET id = $2 WHERE id = $1`, [anyId(), keys.nextId++]];
    case 'delete':
      return [`DELETE FROM fault.accounts WHERE id = $1`, [anyId()]];
    case 'lineInsert': {
      const o = keys.nextOrder++;
      return [`INSERT INTO fault.lines SELECT $1::int, l, l, 'sku' || $1::int FROM generate_series(1, 3) l`, [o]];
    }
    case 'lineUpdate':
      return [`UPDATE fault.lines SET qty = qty + 1 WHERE order_id = $1`, [anyOrder()]];
    case 'lineMove': // a move of one column of a composite key
      return [`UPDATE fault.lines SET line_no = $2 WHERE order_id = $1 AND line_no = (SELECT min(line_no) FROM fault.lines WHERE order_id = $1)`,
        [anyOrder(), keys.nextLine++]];
    case 'lineDelete':
      return [`DELETE FROM fault.lines WHERE order_id = $1 AND line_no = $2`, [anyOrder(), r.int(1, 3)]];
  }
}

/** True for an error that means the connection is gone (server shut down, restarted, unreachable). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  if (code.startsWith('08') || code.startsWith('57P') || ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true;
  const msg = (err as Error).message ?? '';
  return /Connection terminated|not queryable|ECONNREFUSED|ECONNRESET|the database system is (starting up|shutting down)/i.test(msg);
}

async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  // A connection lost between queries is reported as an event: without a listener it would end the process.
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => {});
    throw err;
  }
  return c;
}

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect(url);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Commit marker `id` on the source (retrying while the source is away) and return when it committed. Every source
 * transaction committed before it is then before it in the stream too: once the marker is on the target, so is
 * everything before it.
 */
export async function writeMarker(url: string, id: number, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await withClient(url, (c) => c.query(`INSERT INTO fault.marker (id) VALUES ($1) ON CONFLICT (id) DO NOTHING`, [id]));
      return;
    } catch (err) {
      if (!isConnectionError(err) || Date.now() > until) throw err;
      await sleep(250);
    }
  }
}

/** True when marker `id` is on the target (false while the target is away). */
export async function markerArrived(url: string, id: number): Promise<boolean> {
  try {
    return await withClient(url, async (c) => {
      const r = await c.query(`SELECT 1 FROM fault.marker WHERE id = $1`, [id]);
      return (r.rowCount ?? 0) > 0;
    });
  } catch {
    return false;
  }
}
