import pg from 'pg';
import { connect, pgEndpoint } from '../adapters/postgres/connect.js';
import type { EndpointConfig } from '../config/schema.js';

/**
 * Remove one flow's rows from the target's `_ferry` schema, and the schema itself once no other flow uses it.
 * Idempotent: a target without `_ferry` is left as it is. Used by `ferry cleanup` and `ferry reset`.
 */
export async function dropTargetBookkeeping(target: EndpointConfig, flow: string): Promise<void> {
  const client: pg.Client = await connect(pgEndpoint(target, 'target'));
  try {
    const { rows: present } = await client.query(`SELECT to_regnamespace('_ferry') IS NOT NULL AS present`);
    if (!present[0]?.present) return;
    await client.query(`DELETE FROM _ferry.snapshot_progress WHERE flow = $1`, [flow]).catch(() => {});
    await client.query(`DELETE FROM _ferry.cdc_position WHERE flow = $1 OR starts_with(flow, $1 || '#')`, [flow]).catch(() => {});
    const { rows } = await client
      .query(`SELECT (SELECT count(*) FROM _ferry.snapshot_progress) + (SELECT count(*) FROM _ferry.cdc_position) AS n`)
      .catch(() => ({ rows: [{ n: '0' }] }));
    if (Number(rows[0]?.n ?? 0) === 0) await client.query('DROP SCHEMA IF EXISTS _ferry CASCADE');
  } finally {
    await client.end();
  }
}
