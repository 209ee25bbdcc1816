/**
 * How many more connections a PostgreSQL server would accept from us right now: max_connections, less the slots
 * reserved for superusers (and, on 16+, for pg_use_reserved_connections), less the connections open at this moment.
 * An approximation by nature (others connect and leave), so callers keep headroom.
 */
import type { EndpointConfig } from '../../config/schema.js';
import { connect, pgEndpoint } from './connect.js';

export interface ConnectionRoom {
  max: number;
  reserved: number;
  used: number;
  /** max - reserved - used, never below 0. */
  free: number;
}

export async function connectionRoom(endpoint: EndpointConfig, role: 'source' | 'target'): Promise<ConnectionRoom> {
  const client = await connect(pgEndpoint(endpoint, role));
  try {
    const { rows } = await client.query<{ max: string; reserved: string; used: string }>(
      `SELECT current_setting('max_connections') AS max,
              (current_setting('superuser_reserved_connections')::int
               + coalesce(current_setting('reserved_connections', true), '0')::int)::text AS reserved,
              (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::text AS used`,
    );
    const r = rows[0]!;
    const [max, reserved, used] = [Number(r.max), Number(r.reserved), Number(r.used)];
    return { max, reserved, used, free: Math.max(0, max - reserved - used) };
  } finally {
    await client.end().catch(() => {});
  }
}
