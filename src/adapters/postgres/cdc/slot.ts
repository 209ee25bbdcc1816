/**
 * The publication and the replication slot of a flow. The publication is created first: the slot decodes with
 * the catalog as of each change, so a publication created after the slot would miss the changes in between.
 */
import pg from 'pg';
import type { TableSchema } from '../../../core/model.js';
import type { LagInfo } from '../../../core/ports/change-source.js';
import { ident, qualified } from '../sql.js';
import { normalizeLsn } from './lsn.js';
import { publicationName, slotName } from './names.js';

export async function ensurePublication(client: pg.ClientBase, flow: string, tables: TableSchema[]): Promise<void> {
  const name = publicationName(flow);
  const list = tables.map((t) => qualified(t.source)).join(', ');
  const { rows } = await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (rows.length === 0) {
    // Changes to partitions are published as changes of the partitioned table the flow selected.
    await client.query(`CREATE PUBLICATION ${ident(name)} FOR TABLE ${list} WITH (publish_via_partition_root = true)`);
  } else {
    await client.query(`ALTER PUBLICATION ${ident(name)} SET TABLE ${list}`);
  }
}

export interface SlotInfo {
  confirmed: string;
  active: boolean;
}

export async function findSlot(client: pg.ClientBase, flow: string): Promise<SlotInfo | undefined> {
  const { rows } = await client.query<{ confirmed: string | null; active: string }>(
    `SELECT confirmed_flush_lsn::text AS confirmed, active::text AS active FROM pg_replication_slots WHERE slot_name = $1`,
    [slotName(flow)],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { confirmed: normalizeLsn(r.confirmed ?? '0/0'), active: r.active === 'true' };
}

/**
 * Create the slot on a replication connection and export its snapshot. The snapshot stays usable by other sessions
 * (SET TRANSACTION SNAPSHOT) for as long as `conn` stays open and runs nothing else.
 */
export async function createSlotWithSnapshot(conn: pg.Client, flow: string): Promise<{ position: string; snapshot: string }> {
  const { rows } = await conn.query<{ consistent_point: string; snapshot_name: string }>(
    `CREATE_REPLICATION_SLOT ${ident(slotName(flow))} LOGICAL pgoutput EXPORT_SNAPSHOT`,
  );
  return { position: normalizeLsn(rows[0]!.consistent_point), snapshot: rows[0]!.snapshot_name };
}

export async function slotLag(client: pg.ClientBase, flow: string): Promise<LagInfo | undefined> {
  const { rows } = await client.query<{ lag: string | null; retained: string | null; active: string }>(
    `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag,
            (pg_current_wal_lsn() - restart_lsn)::text AS retained, active::text AS active
     FROM pg_replication_slots WHERE slot_name = $1`,
    [slotName(flow)],
  );
  const r = rows[0];
  if (!r) return undefined;
  return { lagBytes: Number(r.lag ?? 0), retainedBytes: Number(r.retained ?? 0), active: r.active === 'true' };
}

/** Drop slot and publication. A slot still in use is terminated first (cleanup is the user's explicit order). */
export async function dropSlotAndPublication(client: pg.ClientBase, flow: string): Promise<void> {
  const slot = slotName(flow);
  await client.query(
    `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
    [slot],
  );
  for (let i = 0; i < 50; i++) {
    try {
      await client.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
      break;
    } catch (err) {
      // 55006: the terminated walsender has not released the slot yet.
      if ((err as { code?: string }).code !== '55006' || i === 49) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.query(`DROP PUBLICATION IF EXISTS ${ident(publicationName(flow))}`);
}
