/**
 * Which streaming failures a supervisor retries. A lost or refused connection, a server shutting down or
 * restarting, too many connections, a slot still held by the previous session's walsender: all pass, so they are
 * retried (forever, with backoff). Fatal: a dropped slot, invalid configuration, a permanent authentication or
 * permission failure, a missing database.
 */
import { ConfigError, ConnectionError, FerryError, PreflightError } from '../core/errors.js';

export type Verdict = 'fatal' | 'retry' | 'unknown';

const RETRY_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

/** The error and its causes, outermost first. */
function chain(err: unknown): { code?: unknown; message?: unknown }[] {
  const out: { code?: unknown; message?: unknown }[] = [];
  let e: unknown = err;
  for (let i = 0; e && typeof e === 'object' && i < 5; i++) {
    out.push(e as { code?: unknown; message?: unknown });
    e = (e as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * MongoDB (additive): error 286 ChangeStreamHistoryLost and 280 ChangeStreamFatalError (the resume point left the
 * oplog: the flow must start over) and authentication/authorization failures (18, 13) are fatal; network errors and
 * errors the driver labels resumable or retryable are retried.
 */
function classifyMongo(e: { code?: unknown; message?: unknown; name?: unknown; errorLabels?: unknown; codeName?: unknown }): Verdict | undefined {
  if (e.code === 286 || e.code === 280 || e.code === 18 || e.code === 13 || e.codeName === 'ChangeStreamHistoryLost') return 'fatal';
  const labels = Array.isArray(e.errorLabels) ? e.errorLabels : [];
  if (labels.includes('ResumableChangeStreamError') || labels.includes('RetryableWriteError') || labels.includes('TransientTransactionError')) return 'retry';
  if (typeof e.name === 'string' && /^Mongo(Network|NetworkTimeout|ServerSelection|TopologyClosed)Error$/.test(e.name)) return 'retry';
  return undefined;
}

export function classifyStreamError(err: unknown): Verdict {
  for (const e of chain(err)) {
    const mongo = classifyMongo(e as Parameters<typeof classifyMongo>[0]);
    if (mongo) return mongo;
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : '';
    if (code.startsWith('28') || code === '42501' || code === '3D000') return 'fatal';
    if (code === '42704' && /replication slot/i.test(message)) return 'fatal';
    if (/password must be a string|asks for a password/i.test(message)) return 'fatal';
    if (/^(57P0[123]|08...|53300|53400|55006|40001|40P01|55P03|57014)$/.test(code)) return 'retry';
    if (RETRY_ERRNO.has(code)) return 'retry';
    if (/connection terminated|connection timeout|no answer within|socket hang up|read ECONNRESET|not queryable|Client was closed|the replication stream .* ended|silent for/i.test(message)) return 'retry';
  }
  if (err instanceof ConfigError || err instanceof PreflightError) return 'fatal';
  if (err instanceof FerryError && !(err instanceof ConnectionError)) return 'fatal';
  return 'unknown';
}
