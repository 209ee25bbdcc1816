/** A connection pool for one endpoint whose connection failures become errors that name the endpoint. */
import pg from 'pg';
import type { EndpointConfig } from '../../config/schema.js';
import { connectionError, pgEndpoint, type PgEndpoint } from './connect.js';

export class PgPool {
  readonly endpoint: PgEndpoint;
  private readonly pool: pg.Pool;

  constructor(config: EndpointConfig, role: 'source' | 'target', connections: number) {
    this.endpoint = pgEndpoint(config, role);
    this.pool = new pg.Pool({ ...this.endpoint.config, max: connections });
    this.pool.on('error', () => {}); // an idle client losing its server must not crash the process
  }

  async client(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (err) {
      throw connectionError(this.endpoint, err);
    }
  }

  async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.client();
    try {
      return await fn(c);
    } finally {
      c.release();
    }
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}
