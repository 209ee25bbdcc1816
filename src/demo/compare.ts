import pg from 'pg';
import { rawTypes } from '../adapters/postgres/connect.js';
import { ident } from '../adapters/postgres/sql.js';

export interface TableComparison {
  table: string;
  rows: number;
  ok: boolean;
}

/**
 * Whole-table comparison for the demo: row count and an order-independent checksum of every row's text form,
 * computed inside each database. (`ferry verify`, with per-range checksums and repair, is the tool for real use.)
 */
export async function compareTables(sourceUrl: string, targetUrl: string, schema: string): Promise<TableComparison[]> {
  const [a, b] = [new pg.Client({ connectionString: sourceUrl, types: rawTypes }), new pg.Client({ connectionString: targetUrl, types: rawTypes })];
  for (const c of [a, b]) c.on('error', () => {});
  await Promise.all([a.connect(), b.connect()]);
  try {
    const { rows: tables } = await a.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r','p') ORDER BY 1`,
      [schema],
    );
    const out: TableComparison[] = [];
    for (const { name } of tables) {
      // Sum of the first 60 bits of each row's md5: independent of physical order, so keyless tables compare too.
      const sql = `SELECT count(*)::text AS n,
                          coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text AS h
                   FROM ${ident(schema)}.${ident(name)} t`;
      const [x, y] = await Promise.all([a.query(sql), b.query(sql)]);
      const ok = x.rows[0].n === y.rows[0].n && x.rows[0].h === y.rows[0].h;
      out.push({ table: `${schema}.${name}`, rows: Number(x.rows[0].n), ok });
    }
    return out;
  } finally {
    await Promise.allSettled([a.end(), b.end()]);
  }
}
