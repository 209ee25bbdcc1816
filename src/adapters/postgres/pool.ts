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

  /**
   * pg-pool handles 'error' only on idle clients. A checked-out client whose server goes away between two queries
   * (an open apply batch while the target restarts) would emit an unhandled 'error' and crash the process; its next
   * query fails instead ("not queryable"), which is what the callers and the stream supervisor act on.
   */
  private readonly guarded = new WeakSet<pg.PoolClient>();

  async client(): Promise<pg.PoolClient> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (err) {
      throw connectionError(this.endpoint, err);
    }
    if (!this.guarded.has(c)) {
      this.guarded.add(c);
      c.on('error', () => {});
    }
    return c;
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
