/**
 * Keeps streaming alive across lost connections: each attempt runs the streamer on fresh connections from the
 * committed position (the target's applied position makes replays safe), and a failure that can pass is retried
 * with exponential backoff, logged with the attempt count and the error. Fatal errors end it at once. An error of
 * unknown kind (a bug, or a database error that would repeat) is retried a few times, then treated as fatal, so
 * it is reported instead of looping forever.
 *
 * The backoff spaces out the attempts (and their warnings) while a server stays away, but it must not delay the
 * return: when the error names the address it could not reach (a refused or timed-out connection), the wait also
 * probes that address every `probeMs`, and the next attempt starts as soon as it accepts a connection, with the
 * backoff started over (what follows is a new incident: a server still starting up is retried within a second).
 */
import { connect as netConnect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../core/errors.js';
import { classifyStreamError } from './stream-errors.js';

export interface SuperviseOptions {
  signal: AbortSignal;
  warn: (message: string) => void;
  /** First delay; doubles per consecutive failure up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Consecutive failures of unknown kind before giving up. */
  unknownAttempts?: number;
  /** An attempt that ran this long before failing resets the backoff. */
  healthyAfterMs?: number;
  onRetry?: (attempt: number, err: unknown) => void;
  /** How often the wait checks whether the endpoint the error names is back (ms, default 500). */
  probeMs?: number;
  /** What the wait checks (default `unreachableEndpoint` and a TCP connection to it); undefined: plain backoff. */
  probe?: (err: unknown) => Probe | undefined;
}

export interface Probe {
  /** For the warning: what is waited for. */
  what: string;
  /** True once it answers. */
  ready(): Promise<boolean>;
}

export async function superviseStream<T>(attempt: () => Promise<T>, opts: SuperviseOptions): Promise<T | undefined> {
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 15_000;
  const healthyAfter = opts.healthyAfterMs ?? 60_000;
  const probeOf = opts.probe ?? tcpProbe;
  let failures = 0;
  let unknown = 0;
  for (;;) {
    const began = Date.now();
    try {
      return await attempt();
    } catch (err) {
      if (opts.signal.aborted) return undefined;
      const verdict = classifyStreamError(err);
      if (verdict === 'fatal') throw err;
      if (Date.now() - began >= healthyAfter) {
        failures = 0;
        unknown = 0;
      }
      failures++;
      if (verdict === 'unknown' && ++unknown >= (opts.unknownAttempts ?? 5)) throw err;
      const delay = Math.min(max, base * 2 ** Math.min(failures - 1, 16)) * (0.75 + Math.random() / 2);
      const probe = probeOf(err);
      opts.warn(
        `streaming interrupted (attempt ${failures}, reconnecting in ${(delay / 1000).toFixed(1)} s` +
          `${probe ? ` or as soon as ${probe.what} answers` : ''}): ${errorMessage(err)}`,
      );
      opts.onRetry?.(failures, err);
      const woke = await waitToRetry(delay, probe, opts.probeMs ?? 500, opts.signal);
      if (woke === 'stopped') return undefined;
      if (woke === 'ready') failures = 0;
    }
  }
}

/** Sleep `delay`, or less once `probe` answers; 'stopped' when the signal fires meanwhile. */
async function waitToRetry(delay: number, probe: Probe | undefined, every: number, signal: AbortSignal): Promise<'elapsed' | 'ready' | 'stopped'> {
  const until = Date.now() + delay;
  try {
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return 'elapsed';
      await sleep(probe ? Math.min(every, left) : left, undefined, { signal });
      if (probe && Date.now() < until && (await probe.ready().catch(() => false))) return 'ready';
      if (signal.aborted) return 'stopped';
    }
  } catch {
    return 'stopped'; // stopped while waiting
  }
}

/** Errors of a connection that could not be made, which name where it was going (Node's net errors do). */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** The address and port (or Unix socket path) that a connection error in `err`'s cause chain could not reach. */
export function unreachableEndpoint(err: unknown): { host?: string; port?: number; path?: string } | undefined {
  let e: unknown = err;
  for (let i = 0; e && typeof e === 'object' && i < 6; i++) {
    const { code, address, port } = e as { code?: unknown; address?: unknown; port?: unknown };
    if (typeof code === 'string' && UNREACHABLE.has(code) && typeof address === 'string' && address !== '') {
      if (typeof port === 'number' && port > 0) return { host: address, port };
      if (address.startsWith('/')) return { path: address };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function tcpProbe(err: unknown): Probe | undefined {
  const at = unreachableEndpoint(err);
  if (!at) return undefined;
  return {
    what: at.path ?? (at.host!.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`),
    ready: () =>
      new Promise<boolean>((resolve) => {
        const socket = at.path ? netConnect({ path: at.path }) : netConnect({ host: at.host!, port: at.port! });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(1000, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      }),
  };
}
