/**
 * Connections to PostgreSQL with fidelity settings: every value arrives as PostgreSQL's own text (no JS Date or
 * number parsing anywhere), and the session runs in UTC with ISO dates so text output never depends on the server's
 * or the process's zone.
 */
import pg from 'pg';
import { describeEndpoint } from '../../config/endpoint.js';
import type { EndpointConfig } from '../../config/schema.js';
import { ConnectionError } from '../../core/errors.js';

/**
 * Every connection fails fast instead of hanging: the whole startup (TCP, TLS, authentication) must finish within
 * the connect timeout, and TCP keepalives detect a peer that vanished without closing. A statement timeout applies
 * when FERRY_STATEMENT_TIMEOUT_MS is set (off by default: snapshot copies and index builds of large tables may
 * legitimately run for hours); a replication stream has its own silence watchdog (pgoutput-stream.ts).
 */
export const CONNECT_TIMEOUT_MS = envMs('FERRY_CONNECT_TIMEOUT_MS', 10_000);
const STATEMENT_TIMEOUT_MS = envMs('FERRY_STATEMENT_TIMEOUT_MS', 0);

function envMs(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v >= 0 && process.env[name] !== '' && process.env[name] !== undefined ? v : fallback;
}

/** Type parser table that returns the raw text for every type. */
export const rawTypes = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig;

export interface PgEndpoint {
  config: pg.ClientConfig;
  /** For logs and errors: user@host:port/db, never the password. */
  display: string;
}

export function pgEndpoint(e: EndpointConfig, role: 'source' | 'target'): PgEndpoint {
  const config: pg.ClientConfig = {
    application_name: `ferry-${role}`,
    types: rawTypes,
    // xmloption=content: an xml column may hold fragments, which a target defaulting to `document` would refuse.
    // bytea_output=hex: bytea's text form (in checksums, and in the old rows matched on a keyless table's target) must
    // not follow a database default of `escape`.
    options:
      '-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex -c xmloption=content -c row_security=off',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  if (STATEMENT_TIMEOUT_MS > 0) config.statement_timeout = STATEMENT_TIMEOUT_MS;
  if (e.url) config.connectionString = e.url;
  if (e.host) config.host = e.host;
  if (e.port) config.port = e.port;
  if (e.user) config.user = e.user;
  if (e.password !== undefined) config.password = e.password;
  if (e.database) config.database = e.database;
  if (e.ssl !== undefined && e.ssl !== false && e.ssl !== 'disable') {
    config.ssl = e.ssl === 'verify-full' ? { rejectUnauthorized: true } : { rejectUnauthorized: false };
  }
  return { config, display: `${role} ${describeEndpoint(e, { withUser: true, unparseable: '(unparseable url)' })}` };
}

/** Connect, turning network and authentication failures into errors a user can act on. */
export async function connect(ep: PgEndpoint, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...ep.config, ...extra });
  // An idle client that loses its server emits 'error'; without a listener that would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw connectionError(ep, err);
  }
  return client;
}

export function connectionError(ep: PgEndpoint, err: unknown): ConnectionError {
  const error = describeConnectionError(ep, err);
  // The original error stays reachable (its SQLSTATE or errno decides whether a supervisor retries).
  Object.defineProperty(error, 'cause', { value: err, enumerable: false });
  return error;
}

function describeConnectionError(ep: PgEndpoint, err: unknown): ConnectionError {
  const e = err as { code?: string; message?: string };
  const why = e.message ?? String(err);
  if (/client password must be a string/i.test(why)) {
    return new ConnectionError(
      `cannot log in to ${ep.display}: the server asks for a password and none is set`,
      'add the password to the URL or the `password` field (or the ${ENV} variable that holds it)',
    );
  }
  if (/timeout/i.test(why) && !e.code) {
    return new ConnectionError(
      `cannot connect to ${ep.display}: no answer within ${CONNECT_TIMEOUT_MS / 1000} s (${why})`,
      'check that the host and port are those of a PostgreSQL server that is up (FERRY_CONNECT_TIMEOUT_MS sets the limit)',
    );
  }
  switch (e.code) {
    case '28P01':
    case '28000':
      return new ConnectionError(`cannot log in to ${ep.display}: ${why}`, 'check the user and password (or the ${ENV} variable that holds it)');
    case '3D000':
      return new ConnectionError(`cannot connect to ${ep.display}: ${why}`, 'create the database or fix its name');
    case '42501':
      return new ConnectionError(`${ep.display} refused us: ${why}`, 'grant the user the privilege named above');
    case 'ECONNREFUSED':
    case 'ECONNRESET':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
      return new ConnectionError(`cannot reach ${ep.display}: ${why}`, 'check the host and port, and that the server accepts connections from here');
    default:
      return new ConnectionError(`cannot connect to ${ep.display}: ${why}`);
  }
}
