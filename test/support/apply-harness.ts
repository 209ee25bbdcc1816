/**
 * Applying a slot's changes straight through the real PgChangeTarget, as the streamer would, and comparing whole
 * tables afterwards: shared by the apply tests (cdc-apply-fold, cdc-apply-arrays, cdc-evolve).
 */
import pg from 'pg';
import { expect } from 'vitest';
import { PgChangeTarget } from '../../src/adapters/postgres/cdc/change-target.js';
import { rawTypes } from '../../src/adapters/postgres/connect.js';
import { tableKey, type TableSchema } from '../../src/core/model.js';
import type { Change, RowImage } from '../../src/core/ports/change-source.js';
import { query } from './pg-pair.js';
import { readSlot } from './pgoutput-peek.js';

export type Urls = { sourceUrl: string; targetUrl: string };

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** The slot's changes as the source adapter hands them to the target. */
export async function changesOf(url: string, slot: string): Promise<Change[]> {
  const out: Change[] = [];
  for (const m of await readSlot(url, slot, 'p', true)) {
    if (m.tag === 'I') out.push({ op: 'insert', table: m.rel!, row: m.row! });
    else if (m.tag === 'U') out.push({ op: 'update', table: m.rel!, row: m.row!, old: m.old ?? null });
    else if (m.tag === 'D') out.push({ op: 'delete', table: m.rel!, old: m.old! });
    else if (m.tag === 'T') out.push({ op: 'truncate', tables: m.rels!, cascade: false, restartIdentity: false });
  }
  return out;
}

/**
 * Apply in one batch, `chunk` changes per call; rows reported missing are read from the source and upserted, as the
 * streamer does. Returns what was reported.
 */
export async function applyAll(urls: Urls, tables: TableSchema[], changes: Change[], chunk: number): Promise<string[]> {
  const target = new PgChangeTarget({ url: urls.targetUrl }, { connections: 1 });
  const byKey = new Map(tables.map((t) => [tableKey(t.source), t]));
  const reported: string[] = [];
  try {
    await target.appliedPosition('f');
    const b = await target.begin('f', tables);
    try {
      for (let i = 0; i < changes.length; i += chunk) {
        for (const m of await b.apply(changes.slice(i, i + chunk))) {
          const t = byKey.get(m.table)!;
          reported.push(`${m.table} ${JSON.stringify(m.key)}`);
          const where = t.primaryKey.map((c) => `${c}::text = '${m.key[c]}'`).join(' AND ');
          await b.upsert(m.table, await query<RowImage>(urls.sourceUrl, `SELECT * FROM ${m.table} WHERE ${where}`));
        }
      }
    } catch (err) {
      await b.rollback();
      throw err;
    }
    await b.commit('0/1');
  } finally {
    await target.close();
  }
  return reported;
}

/** Row count and md5 of the ordered rows of each table (`order`: table → ORDER BY), equal on both sides. */
export async function expectSame(urls: Urls, order: Record<string, string>): Promise<void> {
  for (const [t, by] of Object.entries(order)) {
    const sql = `SELECT count(*)::text n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY ${by}), '')) h FROM ${t} t`;
    const [s] = await query(urls.sourceUrl, sql);
    const [d] = await query(urls.targetUrl, sql);
    expect(d, t).toEqual(s);
  }
}
