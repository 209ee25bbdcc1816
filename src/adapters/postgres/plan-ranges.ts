/**
 * Splitting a table into ranges of about `rowsPerRange` rows, from the catalog and the primary key index, without
 * reading the table: integer keys by min/max, other keys by sampled quantiles, keyless tables by block ranges.
 */
import type pg from 'pg';
import type { PlannedRange, TableSchema } from '../../core/model.js';
import { type KeyTuple, type PgRange, orderBy, rangeLabel, readFrom } from './ranges.js';
import { ident, qualified } from './sql.js';

const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);

export async function planRanges(client: pg.ClientBase, table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]> {
  const estimate = Math.max(0, table.estimatedRows);
  const wanted = Math.max(1, Math.ceil(estimate / rowsPerRange));
  let ranges: PgRange[];
  if (table.primaryKey.length === 0) {
    ranges = await blockRanges(client, table, wanted);
  } else if (wanted === 1) {
    ranges = [{ kind: 'pk', lower: null, upper: null }];
  } else if (table.primaryKey.length === 1 && INTEGER_TYPES.has(keyType(table, 0))) {
    ranges = await integerRanges(client, table, wanted);
  } else {
    ranges = await sampledRanges(client, table, wanted);
  }
  const perRange = Math.ceil(estimate / ranges.length);
  return ranges.map((range) => ({ range, label: rangeLabel(table, range), estimatedRows: perRange }));
}

function keyType(table: TableSchema, i: number): string {
  const name = table.primaryKey[i];
  return table.columns.find((c) => c.name === name)?.type ?? '';
}

/** Boundaries b1 < b2 < … become [-∞, b1), [b1, b2), …, [bn, ∞). */
function fromBoundaries(bounds: KeyTuple[]): PgRange[] {
  const edges: (KeyTuple | null)[] = [null, ...bounds, null];
  return edges.slice(1).map((upper, i) => ({ kind: 'pk' as const, lower: edges[i]!, upper }));
}

async function integerRanges(client: pg.ClientBase, table: TableSchema, wanted: number): Promise<PgRange[]> {
  const key = ident(table.primaryKey[0]!);
  const { rows } = await client.query<{ lo: string | null; hi: string | null }>(
    `SELECT min(${key}) AS lo, max(${key}) AS hi FROM ${readFrom(table)}`,
  );
  const lo = rows[0]?.lo;
  const hi = rows[0]?.hi;
  if (lo == null || hi == null) return [{ kind: 'pk', lower: null, upper: null }];
  // BigInt: int8 keys exceed 2^53.
  const span = BigInt(hi) - BigInt(lo) + 1n;
  const n = span < BigInt(wanted) ? span : BigInt(wanted);
  const step = (span + n - 1n) / n;
  const bounds: KeyTuple[] = [];
  for (let i = 1n; i < n; i++) bounds.push([(BigInt(lo) + step * i).toString()]);
  return fromBoundaries(bounds);
}

/** Quantiles of a block sample (TABLESAMPLE SYSTEM reads only the sampled pages), ordered by the key's own order. */
async function sampledRanges(client: pg.ClientBase, table: TableSchema, wanted: number): Promise<PgRange[]> {
  const sampleRows = Math.max(1000, wanted * 100);
  const pct = Math.min(100, (sampleRows * 100) / Math.max(1, table.estimatedRows));
  const cols = table.primaryKey.map(ident).join(', ');
  const { rows } = await client.query<string[]>({
    text: `SELECT ${cols} FROM ${readFrom(table)} TABLESAMPLE SYSTEM (${pct.toFixed(6)}) ORDER BY ${orderBy(table)}`,
    rowMode: 'array',
  });
  const bounds: KeyTuple[] = [];
  for (let i = 1; i < wanted; i++) {
    const row = rows[Math.floor((i * rows.length) / wanted)];
    if (!row) continue;
    const last = bounds[bounds.length - 1];
    if (last && last.every((v, j) => v === row[j])) continue;
    bounds.push(row.map(String));
  }
  // The sample is sorted by PostgreSQL, so bounds ascend; the first one could equal the smallest key, which is fine.
  return fromBoundaries(bounds);
}

async function blockRanges(client: pg.ClientBase, table: TableSchema, wanted: number): Promise<PgRange[]> {
  const blocks = await blockCount(client, table);
  const n = Math.max(1, Math.min(wanted, blocks));
  const step = Math.ceil(blocks / n) || 1;
  const ranges: PgRange[] = [];
  for (let from = 0; ranges.length < n; from += step) {
    const last = ranges.length === n - 1;
    // The last range is open-ended: pages appended after planning are still copied.
    ranges.push({ kind: 'blocks', from, to: last ? null : from + step });
  }
  return ranges;
}

export async function blockCount(client: pg.ClientBase, table: TableSchema): Promise<number> {
  const { rows } = await client.query<{ blocks: string }>(
    `SELECT (pg_relation_size($1::regclass) / current_setting('block_size')::int)::text AS blocks`,
    [qualified(table.source)],
  );
  return Number(rows[0]?.blocks ?? 0);
}
