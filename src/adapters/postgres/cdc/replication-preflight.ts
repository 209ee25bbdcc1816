/**
 * Can this source stream these tables? Checked before anything is created; every failure says how to fix it, and
 * all failures are reported together.
 */
import type pg from 'pg';
import { PreflightError } from '../../../core/errors.js';
import { tableKey, type TableSchema } from '../../../core/model.js';
import { qualified } from '../sql.js';
import { slotName } from './names.js';

export async function checkReplicationSource(client: pg.ClientBase, flow: string, tables: TableSchema[]): Promise<void> {
  const problems: string[] = [];
  const setting = async (name: string) => (await client.query<{ v: string }>(`SELECT current_setting($1) AS v`, [name])).rows[0]!.v;

  const walLevel = await setting('wal_level');
  if (walLevel !== 'logical') {
    problems.push(`wal_level is ${walLevel}: set \`wal_level = logical\` in postgresql.conf (or the RDS parameter rds.logical_replication = 1) and restart the server`);
  }
  const { rows: slots } = await client.query<{ used: string; mine: string }>(
    `SELECT count(*)::text AS used, count(*) FILTER (WHERE slot_name = $1)::text AS mine FROM pg_replication_slots`,
    [slotName(flow)],
  );
  const maxSlots = Number(await setting('max_replication_slots'));
  if (slots[0]!.mine === '0' && Number(slots[0]!.used) >= maxSlots) {
    problems.push(`all ${maxSlots} replication slots are in use: raise max_replication_slots or drop an unused slot (SELECT pg_drop_replication_slot(name))`);
  }
  const { rows: senders } = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM pg_stat_replication`);
  const maxSenders = Number(await setting('max_wal_senders'));
  if (Number(senders[0]!.n) >= maxSenders) {
    problems.push(`all ${maxSenders} WAL senders are busy: raise max_wal_senders`);
  }
  const { rows: role } = await client.query<{ ok: string }>(
    `SELECT (rolsuper OR rolreplication)::text AS ok FROM pg_roles WHERE rolname = current_user`,
  );
  if (role[0]?.ok !== 'true') {
    problems.push(`the source user lacks the REPLICATION attribute: ALTER ROLE ${await setting('session_authorization')} WITH REPLICATION (on RDS: GRANT rds_replication)`);
  }
  for (const t of tables) {
    const { rows } = await client.query<{ identity: string; deferrable: string; unlogged: string }>(
      `SELECT relreplident AS identity, relpersistence = 'u' AS unlogged,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND NOT i.indimmediate)::text AS deferrable
       FROM pg_class c WHERE oid = $1::regclass`,
      [qualified(t.source)],
    );
    const identity = rows[0]?.identity;
    // Unlogged tables are copied but not streamed (their changes are not in the WAL): nothing to identify.
    if (rows[0]?.unlogged === 'true') continue;
    if (rows[0]?.deferrable === 'true') {
      // Under a deferred key a transaction may pass rows through each other's keys (id = id + 1 in any order): the
      // stream's key moves then pass through states a target with an immediate key cannot hold, and applying them
      // with the usual "the moved row replaces what holds its new key" would lose rows. Refused rather than wrong.
      problems.push(`${tableKey(t.source)} has a DEFERRABLE primary key, which Ferry cannot stream exactly (a transaction may move rows through each other's keys): recreate the key without DEFERRABLE, exclude the table, or use mode: snapshot`);
    } else if (identity === 'n') {
      problems.push(`${tableKey(t.source)} has REPLICA IDENTITY NOTHING, so its updates and deletes cannot be streamed: ALTER TABLE ${qualified(t.source)} REPLICA IDENTITY DEFAULT (or FULL)`);
    } else if (t.primaryKey.length === 0 && identity !== 'f') {
      problems.push(`${tableKey(t.source)} has no primary key: add one, or ALTER TABLE ${qualified(t.source)} REPLICA IDENTITY FULL so its rows can be matched on their old values`);
    }
  }
  if (problems.length > 0) {
    throw new PreflightError(`the source cannot stream changes yet:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}
