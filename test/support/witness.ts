/**
 * A witness of what the source committed: a `test_decoding` slot created before Ferry starts. When the comparison
 * finds a row that differs, the witness tells which source transactions touched its key (xid, LSNs, change), so
 * that a lost or skipped transaction can be told apart from a bad apply. Diagnostics only: nothing is asserted on it.
 */
import { withClient } from './workload.js';

const SLOT = 'ferry_fault_witness';

export async function createWitness(url: string): Promise<void> {
  await withClient(url, (c) => c.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [SLOT]));
}

export async function dropWitness(url: string): Promise<void> {
  await withClient(url, (c) => c.query(`SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, [SLOT])).catch(() => {});
}

/**
 * For each `table` + key text as the comparer prints it (`(10000)`, `(7,x7)`), the source's changes that name that
 * key, each with its transaction's commit LSN. Single-column integer keys (the table's first column) only are searched; others are skipped.
 */
export async function witnessKeys(url: string, keys: { table: string; key: string }[]): Promise<string[]> {
  const wanted = keys
    .map((k) => ({ ...k, value: /^\((-?\d+)\)$/.exec(k.key)?.[1] }))
    .filter((k): k is { table: string; key: string; value: string } => k.value !== undefined);
  if (wanted.length === 0) return [];
  return withClient(url, async (c) => {
    const out: string[] = [];
    // Peek (not get): the witness keeps its position, so it can be asked again.
    const r = await c.query<{ lsn: string; xid: string; data: string }>(
      `WITH w AS (SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'include-xids', '1', 'skip-empty-xacts', '1'))
       SELECT w.lsn, w.xid, left(w.data, 240) AS data FROM w
        WHERE w.data LIKE 'COMMIT%' OR w.data ~ $2`,
      [SLOT, wanted.map((k) => `^table ${k.table.replace(/\./g, '\\.')}: .*(INSERT|UPDATE|DELETE|old-key|new-tuple): [a-z_]+\\[[a-z ]+\\]:${k.value}( |$)`).join('|')],
    );
    const commits = new Map<string, string>();
    for (const row of r.rows) if (row.data.startsWith('COMMIT')) commits.set(row.xid, row.lsn);
    for (const row of r.rows) {
      if (!row.data.startsWith('COMMIT')) out.push(`xid ${row.xid} change at ${row.lsn}, commit at ${commits.get(row.xid) ?? '?'}: ${row.data}`);
    }
    return out;
  });
}
