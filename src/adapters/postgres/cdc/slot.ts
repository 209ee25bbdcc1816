/**
 * The publication and the replication slot of a flow. The publication is created first: the slot decodes with
 * the catalog as of each change, so a publication created after the slot would miss the changes in between.
 */
import pg from 'pg';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import type { LagInfo } from '../../../core/ports/change-source.js';
import { ident, qualified } from '../sql.js';
import { normalizeLsn } from './lsn.js';
import { publicationName, slotName } from './names.js';

export interface PublicationOptions {
  /**
   * Publish changes of partitions under the leaf's own name (publish_via_partition_root = false), so that a TRUNCATE
   * of one leaf is published and new partitions are published as they appear. Needs the partition hooks
   * (cdc/partitions.ts) wired into the streamer, which map each leaf to its target partition; without them leaf
   * changes would be dropped, so the default stays the root.
   */
  publishLeaves?: boolean;
  /** Told which selected tables are unlogged (copied by the snapshot, never streamed). */
  warn?: (message: string) => void;
}

/** Selected tables that are UNLOGGED (relpersistence 'u'), or partitioned tables with an unlogged partition. */
export async function unloggedTables(client: pg.ClientBase, tables: TableSchema[]): Promise<{ table: string; leaves: string[] }[]> {
  if (tables.length === 0) return [];
  const { rows } = await client.query<{ j: string | null }>(
    `SELECT json_agg(json_build_object('table', w, 'self', c.relpersistence = 'u',
              'leaves', (SELECT coalesce(json_agg(l.relid::regclass::text), '[]') FROM pg_partition_tree(c.oid) l
                         JOIN pg_class lc ON lc.oid = l.relid WHERE l.relid <> c.oid AND lc.relpersistence = 'u')))::text AS j
     FROM unnest($1::text[]) w JOIN pg_class c ON c.oid = to_regclass(w)
     WHERE c.relpersistence = 'u' OR (c.relkind = 'p' AND EXISTS (
       SELECT 1 FROM pg_partition_tree(c.oid) l JOIN pg_class lc ON lc.oid = l.relid WHERE lc.relpersistence = 'u'))`,
    [tables.map((t) => qualified(t.source))],
  );
  const found = JSON.parse(rows[0]?.j ?? 'null') as { table: string; self: boolean; leaves: string[] }[] | null;
  const byQualified = new Map(tables.map((t) => [qualified(t.source), tableKey(t.source)]));
  return (found ?? []).map((f) => ({ table: byQualified.get(f.table) ?? f.table, leaves: f.self ? [] : f.leaves }));
}

export function unloggedWarning(unlogged: { table: string; leaves: string[] }[]): string | undefined {
  if (unlogged.length === 0) return undefined;
  const names = unlogged.map((u) => (u.leaves.length ? `${u.table} (unlogged partitions: ${u.leaves.join(', ')})` : u.table));
  return (
    `unlogged tables are copied by the snapshot but their later changes are not replicated (PostgreSQL writes no WAL for them): ` +
    `${names.join(', ')}; make them logged on the source (ALTER TABLE … SET LOGGED) before the run, or exclude them`
  );
}

/**
 * Create or update the flow's publication. Unlogged tables are left out: PostgreSQL refuses them in a publication
 * ("cannot add relation to publication") because their changes never reach the WAL. They are still copied.
 */
export async function ensurePublication(
  client: pg.ClientBase,
  flow: string,
  tables: TableSchema[],
  opts: PublicationOptions = {},
): Promise<{ unlogged: string[] }> {
  const name = publicationName(flow);
  const unlogged = await unloggedTables(client, tables);
  const skipped = new Set(unlogged.filter((u) => u.leaves.length === 0).map((u) => u.table));
  const published = tables.filter((t) => !skipped.has(tableKey(t.source)));
  const warning = unloggedWarning(unlogged);
  if (warning) opts.warn?.(warning);
  const list = published.map((t) => qualified(t.source)).join(', ');
  const viaRoot = opts.publishLeaves ? 'false' : 'true';
  const { rows } = await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (rows.length === 0) {
    // Without publishLeaves, changes to partitions are published as changes of the partitioned table the flow selected.
    // A publication with no table yet (every selected table unlogged) is still created: tables added later join it.
    await client.query(`CREATE PUBLICATION ${ident(name)}${list ? ` FOR TABLE ${list}` : ''} WITH (publish_via_partition_root = ${viaRoot})`);
  } else {
    if (list) await client.query(`ALTER PUBLICATION ${ident(name)} SET TABLE ${list}`);
    await client.query(`ALTER PUBLICATION ${ident(name)} SET (publish_via_partition_root = ${viaRoot})`);
  }
  return { unlogged: unlogged.map((u) => u.table) };
}

/** Add one table to the flow's publication (a table created on the source after the flow started). Idempotent. */
export async function addToPublication(client: pg.ClientBase, flow: string, table: TableName): Promise<void> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
     WHERE p.pubname = $1 AND pr.prrelid = to_regclass($2)`,
    [publicationName(flow), qualified(table)],
  );
  if (rows.length === 0) await client.query(`ALTER PUBLICATION ${ident(publicationName(flow))} ADD TABLE ${qualified(table)}`);
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
  return { lagBytes: Number(r.lag ?? 0), retained: Number(r.retained ?? 0), active: r.active === 'true' };
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
