/**
 * The row filter Ferry applies to streamed changes where the publication does not (see core/cdc/controlled-target.ts):
 * evaluated by the source itself, so the filter means exactly what it means to the snapshot's read. One round trip
 * per table and apply call: the images travel as one JSON array and become rows of the table's own type.
 * Columns in the filter are written bare or as `table.column` (the rows are aliased by the table's name).
 */
import type { EndpointConfig } from '../../config/schema.js';
import type { RowFilter } from '../../core/cdc/controlled-target.js';
import type { TableSchema } from '../../core/model.js';
import type { RowImage } from '../../core/ports/change-source.js';
import { PgPool } from './pool.js';
import { ident, qualified } from './sql.js';

export class PgRowFilter implements RowFilter {
  private pool: PgPool | undefined;

  constructor(private readonly config: EndpointConfig) {}

  async matches(table: TableSchema, rows: RowImage[]): Promise<boolean[]> {
    const where = table.controls?.where;
    if (!where || rows.length === 0) return rows.map(() => true);
    this.pool ??= new PgPool(this.config, 'source', 1);
    // A JSON string is the column type's text input: exactly the pg-text values the stream carries.
    const { rows: out } = await this.pool.withClient((c) =>
      c.query<{ m: string }>(
        `SELECT coalesce((${where}), false)::text AS m
         FROM json_populate_recordset(NULL::${qualified(table.source)}, $1::json) WITH ORDINALITY AS ${ident(table.source.name)}
         ORDER BY ordinality`,
        [JSON.stringify(rows)],
      ),
    );
    return out.map((r) => r.m === 'true');
  }

  async close(): Promise<void> {
    await this.pool?.end();
    this.pool = undefined;
  }
}
