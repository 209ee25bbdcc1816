/**
 * MongoDB driver errors as errors that say which endpoint and what to do (the driver's own name the hosts but not
 * the role, and would otherwise reach the user as "unexpected error").
 */
import { describeEndpoint } from '../config/endpoint.js';
import type { EndpointConfig } from '../config/schema.js';
import { ConnectionError, FerryError } from '../core/errors.js';

export function mongoEndpointError(err: unknown, role: 'source' | 'target', endpoint?: EndpointConfig): unknown {
  if (err instanceof FerryError || !(err instanceof Error)) return err;
  const where = endpoint ? `${role} ${describeEndpoint(endpoint, { withUser: true, unparseable: '(url)' })}` : `the MongoDB ${role}`;
  const code = (err as { code?: number }).code;
  if (err.name === 'MongoServerSelectionError' || err.name === 'MongoNetworkError' || err.name === 'MongoNetworkTimeoutError') {
    return new ConnectionError(
      `cannot reach ${where}: ${err.message}`,
      'check the hosts and port in the URL and that the servers accept connections from here; a replica set is named with `?replicaSet=<name>`',
    );
  }
  if (code === 18 || err.name === 'MongoAuthError') return new ConnectionError(`${where} refused the login: ${err.message}`, 'check the user and password in the URL (and `?authSource=` if the user is defined in another database)');
  if (code === 13) return new FerryError(`${where}: not authorized: ${err.message}`, 'grant the user the `read` role on the source databases, `readWrite` on the target ones (and on the database of `_ferry`)');
  return err;
}

/** Runs `fn`, turning a driver error into one naming the endpoint. */
export async function onMongo<T>(role: 'source' | 'target', endpoint: EndpointConfig, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw mongoEndpointError(err, role, endpoint);
  }
}
