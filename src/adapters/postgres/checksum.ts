import type pg from 'pg';
import type { Json, TableSchema } from '../../core/model.js';
import type { RangeChecksum } from '../../core/ports/checksum.js';
import { copiedColumns } from './copy-format.js';
import { asPgRange, rangePredicate } from './ranges.js';
import { rowFilter } from './introspect-controls.js';
import { columnList } from './sql.js';

/**
 * Row count and the sum of the first 60 bits of each row's md5 (over the text of the copied columns, in a session
 * with Ferry's fixed output settings). A sum does not depend on physical order, so keyless tables compare too.
 */
export async function checksumRange(client: pg.ClientBase, table: TableSchema, relation: string, range: Json | null): Promise<RangeChecksum> {
  // The source side compares only the rows its row filter keeps (the target side sees targetView: no filter).
  const where = (range === null ? 'true' : rangePredicate(table, asPgRange(range))) + rowFilter(table);
  const { rows } = await client.query<{ n: string; h: string }>(
    `SELECT count(*)::text AS n,
            coalesce(sum(('x' || substr(md5(ROW(${columnList(copiedColumns(table))})::text), 1, 15))::bit(60)::bigint), 0)::text AS h
     FROM ${relation} WHERE ${where}`,
  );
  return { rows: Number(rows[0]!.n), hash: rows[0]!.h };
}
