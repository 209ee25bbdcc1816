/**
 * Keeps streaming alive across lost connections: each attempt runs the streamer on fresh connections from the
 * committed position (the target's applied position makes replays safe), and a failure that can pass is retried
 * with exponential backoff, logged with the attempt count and the error. Fatal errors end it at once. An error of
 * unknown kind (a bug, or a database error that would repeat) is retried a few times, then treated as fatal, so
 * it is reported instead of looping forever.
 */
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
}

export async function superviseStream<T>(attempt: () => Promise<T>, opts: SuperviseOptions): Promise<T | undefined> {
  const base = opts.baseDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 15_000;
  const healthyAfter = opts.healthyAfterMs ?? 60_000;
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
      opts.warn(`streaming interrupted (attempt ${failures}, reconnecting in ${(delay / 1000).toFixed(1)} s): ${errorMessage(err)}`);
      opts.onRetry?.(failures, err);
      try {
        await sleep(delay, undefined, { signal: opts.signal });
      } catch {
        return undefined; // stopped while waiting
      }
    }
  }
}
