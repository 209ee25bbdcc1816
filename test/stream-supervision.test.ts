/** Which failures a streaming supervisor retries, how it backs off, and leases of dead local runs (real SQLite). */
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyStreamError } from '../src/runtime/stream-errors.js';
import { superviseStream, unreachableEndpoint } from '../src/runtime/supervise-stream.js';
import { acquireLease, deadLocalOwner } from '../src/runtime/lease.js';
import { openLocalStateStore } from '../src/runtime/local/state.js';
import { ConfigError, ConnectionError, FerryError } from '../src/core/errors.js';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });
const wrapped = (cause: unknown) => Object.defineProperty(new ConnectionError('cannot reach source 127.0.0.1:1'), 'cause', { value: cause });

describe('classifyStreamError', () => {
  it.each([
    ['28P01', 'fatal'],
    ['28000', 'fatal'],
    ['42501', 'fatal'],
    ['3D000', 'fatal'],
    ['57P01', 'retry'],
    ['57P02', 'retry'],
    ['57P03', 'retry'],
    ['08006', 'retry'],
    ['53300', 'retry'],
    ['55006', 'retry'],
    ['ECONNREFUSED', 'retry'],
    ['ECONNRESET', 'retry'],
    ['ETIMEDOUT', 'retry'],
  ])('%s is %s, also when wrapped in a ConnectionError', (code, verdict) => {
    expect(classifyStreamError(pgError(code))).toBe(verdict);
    expect(classifyStreamError(wrapped(pgError(code)))).toBe(verdict);
  });

  it('a dropped slot is fatal; a missing table is not taken for one', () => {
    expect(classifyStreamError(pgError('42704', 'replication slot "ferry_x" does not exist'))).toBe('fatal');
    expect(classifyStreamError(pgError('42704', 'type "foo" does not exist'))).toBe('unknown');
  });

  it('a lost connection without a code is retried; config errors are fatal; a bug is unknown', () => {
    expect(classifyStreamError(new Error('Connection terminated unexpectedly'))).toBe('retry');
    expect(classifyStreamError(new ConfigError('bad field'))).toBe('fatal');
    expect(classifyStreamError(new FerryError('slot gone'))).toBe('fatal');
    expect(classifyStreamError(new TypeError('x is undefined'))).toBe('unknown');
  });
});

describe('superviseStream', () => {
  const fast = { baseDelayMs: 1, maxDelayMs: 5 };

  it('retries passing failures with the attempt count in the warning, then returns the result', async () => {
    const warnings: string[] = [];
    let n = 0;
    const result = await superviseStream(
      async () => {
        if (++n < 4) throw pgError('57P01', 'terminating connection due to administrator command');
        return 'ok';
      },
      { signal: new AbortController().signal, warn: (m) => warnings.push(m), ...fast },
    );
    expect(result).toBe('ok');
    expect(warnings).toHaveLength(3);
    expect(warnings[2]).toMatch(/attempt 3, reconnecting in .* s\): terminating connection/);
  });

  it('stops at once on a fatal error, and after a few unknown ones', async () => {
    let n = 0;
    const signal = new AbortController().signal;
    await expect(superviseStream(async () => { n++; throw pgError('28P01', 'password authentication failed'); }, { signal, warn: () => {}, ...fast })).rejects.toThrow('password');
    expect(n).toBe(1);
    n = 0;
    await expect(superviseStream(async () => { n++; throw new TypeError('bug'); }, { signal, warn: () => {}, ...fast, unknownAttempts: 3 })).rejects.toThrow('bug');
    expect(n).toBe(3);
  });

  it('an abort while waiting to reconnect ends it without an error', async () => {
    const stop = new AbortController();
    const p = superviseStream(async () => { throw pgError('08006'); }, { signal: stop.signal, warn: () => stop.abort(), baseDelayMs: 60_000 });
    await expect(p).resolves.toBeUndefined();
  });
});

describe('reconnecting when the server is back', () => {
  it('the error names the address a refused connection could not reach, through the wrappers', async () => {
    const { connect, pgEndpoint } = await import('../src/adapters/postgres/connect.js');
    const port = await freePort();
    const err = await connect(pgEndpoint({ url: `postgres://app@127.0.0.1:${port}/db` } as never, 'target')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(unreachableEndpoint(err)).toEqual({ host: '127.0.0.1', port });
    expect(unreachableEndpoint(wrapped(err))).toEqual({ host: '127.0.0.1', port });
    expect(unreachableEndpoint(pgError('57P01', 'terminating connection due to administrator command'))).toBeUndefined();
  });

  it('retries as soon as the refused endpoint accepts connections again, not after the backoff; then backs off from the start', async () => {
    const { createServer } = await import('node:net');
    const { connect, pgEndpoint } = await import('../src/adapters/postgres/connect.js');
    const port = await freePort();
    const endpoint = pgEndpoint({ url: `postgres://app@127.0.0.1:${port}/db` } as never, 'target');
    const server = createServer((s) => s.destroy());
    const warnings: string[] = [];
    const starts: number[] = [];
    let backAt = 0;
    let startingUp = true;
    // Refused at 0 s and at about 2 s (base delay 2 s), then a wait of 3-5 s; the server is back at 3 s, inside it.
    const back = setTimeout(() => server.listen(port, '127.0.0.1', () => (backAt = Date.now())), 3000);
    try {
      const result = await superviseStream(
        async () => {
          starts.push(Date.now());
          if (!backAt) await connect(endpoint); // refused: throws the real error
          if (startingUp) {
            startingUp = false;
            throw pgError('57P03', 'the database system is starting up'); // names no address: plain backoff
          }
          return 'streaming';
        },
        { signal: new AbortController().signal, warn: (m) => warnings.push(m), baseDelayMs: 2000, maxDelayMs: 60_000, probeMs: 100 },
      );
      expect(result).toBe('streaming');
      expect(starts).toHaveLength(4);
      expect(backAt).toBeGreaterThan(starts[1]!);
      // The third attempt followed the server's return within the probe interval, not the 3-5 s backoff.
      expect(starts[2]! - backAt).toBeLessThan(800);
      expect(warnings[0]).toMatch(new RegExp(`attempt 1, reconnecting in .* s or as soon as 127\\.0\\.0\\.1:${port} answers\\): cannot reach target`));
      expect(warnings[1]).toMatch(/attempt 2, reconnecting in [345]\.\d s or as soon as/);
      // The backoff started over when the server answered: the next failure is attempt 1 again, 1.5-2.5 s.
      expect(warnings[2]).toMatch(/attempt 1, reconnecting in (1\.[5-9]|2\.[0-5]) s\): the database system is starting up/);
    } finally {
      clearTimeout(back);
      server.close();
    }
  }, 60_000);
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('leases of dead runs', () => {
  it('a lease held by a process of this host that is gone is taken at once; a live holder is waited for', async () => {
    const store = await openLocalStateStore(join(mkdtempSync(join(tmpdir(), 'ferry-lease-')), 'state.db'));
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    expect(deadLocalOwner(`${hostname()}:${dead}`)).toBe(true);
    expect(await store.acquireLease('runner:f', `${hostname()}:${dead}`, Date.now() + 60_000)).toBe(true);
    const t0 = Date.now();
    const held = await acquireLease(store, 'runner:f', `${hostname()}:${process.pid}`, { ttlMs: 60_000, waitMs: 0 });
    expect(held).toBeDefined();
    expect(Date.now() - t0).toBeLessThan(1000);
    await held!.release();

    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      expect(await store.acquireLease('runner:g', `${hostname()}:${live.pid}`, Date.now() + 60_000)).toBe(true);
      expect(await acquireLease(store, 'runner:g', `${hostname()}:${process.pid}`, { ttlMs: 60_000, waitMs: 0 })).toBeUndefined();
      expect(await acquireLease(store, 'runner:h', 'otherhost:1', { ttlMs: 60_000, waitMs: 0 })).toBeDefined();
      expect(await store.acquireLease('runner:h', `${hostname()}:${process.pid}`, Date.now() + 60_000)).toBe(false); // another host: kept
    } finally {
      live.kill('SIGKILL');
      await store.close();
    }
  });
});

describe('connect timeout', () => {
  it('a server that accepts TCP and never answers fails fast, naming the endpoint', async () => {
    const { createServer } = await import('node:net');
    const { connect, pgEndpoint } = await import('../src/adapters/postgres/connect.js');
    const sockets: import('node:net').Socket[] = [];
    const server = createServer((s) => void sockets.push(s)); // accepts, never says a word
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const err = await connect(pgEndpoint({ url: `postgres://app:secret@127.0.0.1:${port}/db` } as never, 'source'), { connectionTimeoutMillis: 1000 } as never).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(err).toBeInstanceOf(ConnectionError);
      expect((err as Error).message).toContain(`source app@127.0.0.1:${port}/db`);
      expect((err as Error).message).toMatch(/no answer within/);
      expect((err as Error).message).not.toContain('secret');
      expect(classifyStreamError(err)).toBe('retry');
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });
});
