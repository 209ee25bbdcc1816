/**
 * Whole-table comparison of a source and a target database: per table, the row count and the md5 of the ordered rows
 * (`md5(row::text)` in primary-key order), and, where they differ, a diff by key that says how many rows were lost
 * (on the source, not on the target), duplicated (on the target, not on the source, or more often than on the
 * source) and changed (same key, other values).
 */
import pg from 'pg';
import { rawTypes } from '../../src/adapters/postgres/connect.js';

export interface TableComparison {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceMd5: string;
  targetMd5: string;
  equal: boolean;
  lost: number;
  duplicated: number;
  changed: number;
  /** A few keys of each kind, for the failure message. */
  examples: string[];
}

export interface Comparison {
  tables: TableComparison[];
  equal: boolean;
  lost: number;
  duplicated: number;
  changed: number;
}

interface TableInfo {
  name: string;
  /** Quoted primary-key columns; empty for a keyless table (then the whole row is the key). */
  key: string[];
}

// Both sides render every value the same way whatever the servers' settings are.
const SESSION = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'`;

/** The user tables of the source (every schema but the system ones and `_ferry`), or those of `schemas`. */
async function sourceTables(c: pg.Client, schemas?: string[]): Promise<TableInfo[]> {
  const r = await c.query<{ name: string; key: string | null }>(
    `SELECT format('%I.%I', n.nspname, t.relname) AS name,
            (SELECT string_agg(quote_ident(a.attname), chr(1) ORDER BY k.ord)
               FROM pg_index i CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = t.oid AND i.indisprimary) AS key
       FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE t.relkind IN ('r', 'p') AND NOT t.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', '_ferry') AND n.nspname NOT LIKE 'pg\\_%'
        AND ($1::text[] IS NULL OR n.nspname = ANY($1))
      ORDER BY 1`,
    [schemas ?? null],
  );
  return r.rows.map((row) => ({ name: row.name, key: row.key ? row.key.split('\u0001') : [] }));
}

function orderBy(t: TableInfo): string {
  return t.key.length > 0 ? t.key.join(', ') : 't::text';
}

async function summary(c: pg.Client, t: TableInfo): Promise<{ rows: number; md5: string }> {
  const r = await c.query<{ n: string; h: string }>(
    `SELECT count(*)::text AS n, md5(coalesce(string_agg(md5(t::text), '' ORDER BY ${orderBy(t)}), '')) AS h FROM ${t.name} t`,
  );
  return { rows: Number(r.rows[0]!.n), md5: r.rows[0]!.h };
}

/** key text -> md5 of each row with that key (several only for a keyless table, or a duplicated key). */
async function rowsByKey(c: pg.Client, t: TableInfo): Promise<Map<string, string[]>> {
  const key = t.key.length > 0 ? `ROW(${t.key.join(', ')})::text` : 't::text';
  const r = await c.query<{ k: string; h: string }>(`SELECT ${key} AS k, md5(t::text) AS h FROM ${t.name} t`);
  const m = new Map<string, string[]>();
  for (const { k, h } of r.rows) {
    const l = m.get(k);
    if (l) l.push(h);
    else m.set(k, [h]);
  }
  return m;
}

async function open(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: rawTypes });
  c.on('error', () => {});
  await c.connect();
  await c.query(SESSION);
  return c;
}

/** Compare every user table of the source (or of `schemas`) with the table of the same name on the target. */
export async function compareDatabases(sourceUrl: string, targetUrl: string, opts: { schemas?: string[] } = {}): Promise<Comparison> {
  const [s, t] = await Promise.all([open(sourceUrl), open(targetUrl)]);
  try {
    const tables: TableComparison[] = [];
    for (const info of await sourceTables(s, opts.schemas)) {
      const exists = await t.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [info.name]);
      const [a, b] = await Promise.all([
        summary(s, info),
        exists.rows[0]!.ok === 't' ? summary(t, info) : Promise.resolve({ rows: 0, md5: '(table missing on the target)' }),
      ]);
      const cmp: TableComparison = {
        table: info.name, sourceRows: a.rows, targetRows: b.rows, sourceMd5: a.md5, targetMd5: b.md5,
        equal: a.rows === b.rows && a.md5 === b.md5, lost: 0, duplicated: 0, changed: 0, examples: [],
      };
      if (!cmp.equal) {
        // Only a difference is worth the key-by-key pass.
        const src = await rowsByKey(s, info);
        const dst = exists.rows[0]!.ok === 't' ? await rowsByKey(t, info) : new Map<string, string[]>();
        const note = (kind: string, k: string) => cmp.examples.length < 6 && cmp.examples.push(`${kind} ${k}`);
        for (const [k, hs] of src) {
          const there = dst.get(k) ?? [];
          if (there.length < hs.length) { cmp.lost += hs.length - there.length; note('lost', k); }
          if (there.length > hs.length) { cmp.duplicated += there.length - hs.length; note('duplicated', k); }
          const same = Math.min(hs.length, there.length);
          if (same > 0 && [...hs].sort().slice(0, same).join() !== [...there].sort().slice(0, same).join()) { cmp.changed++; note('changed', k); }
        }
        for (const [k, hs] of dst) {
          if (!src.has(k)) { cmp.duplicated += hs.length; note('extra', k); }
        }
      }
      tables.push(cmp);
    }
    return {
      tables,
      equal: tables.every((x) => x.equal),
      lost: tables.reduce((n, x) => n + x.lost, 0),
      duplicated: tables.reduce((n, x) => n + x.duplicated, 0),
      changed: tables.reduce((n, x) => n + x.changed, 0),
    };
  } finally {
    await Promise.allSettled([s.end(), t.end()]);
  }
}

/**
 * For the keys that differ (the examples of `cmp`), the row on each side, so that a report shows which version the
 * target holds (an older one: a change was skipped; none: an insert or key move was lost).
 */
export async function differingRows(sourceUrl: string, targetUrl: string, cmp: Comparison, width = 160): Promise<string[]> {
  const [s, t] = await Promise.all([open(sourceUrl), open(targetUrl)]);
  try {
    const infos = new Map((await sourceTables(s)).map((i) => [i.name, i]));
    const out: string[] = [];
    for (const table of cmp.tables) {
      const info = infos.get(table.table);
      if (!info) continue;
      const key = info.key.length > 0 ? `ROW(${info.key.join(', ')})::text` : 't::text';
      for (const example of table.examples) {
        const k = example.slice(example.indexOf(' ') + 1);
        const at = async (c: pg.Client) =>
          (await c.query<{ r: string }>(`SELECT left(t::text, ${width}) AS r FROM ${info.name} t WHERE ${key} = $1`, [k])).rows.map((x) => x.r).join(' + ') || '(none)';
        out.push(`${info.name} ${k}: source ${await at(s)} | target ${await at(t)}`);
      }
    }
    return out;
  } finally {
    await Promise.allSettled([s.end(), t.end()]);
  }
}

/** One line per table, for a report or a failure message. */
export function formatComparison(c: Comparison): string {
  return c.tables
    .map((t) =>
      `  ${t.table.padEnd(24)} ${String(t.sourceRows).padStart(8)} / ${String(t.targetRows).padStart(8)} rows  ` +
      (t.equal ? `md5 ${t.sourceMd5} both sides` : `DIFFERENT: lost ${t.lost}, duplicated ${t.duplicated}, changed ${t.changed} (${t.examples.join('; ')})`),
    )
    .join('\n');
}
