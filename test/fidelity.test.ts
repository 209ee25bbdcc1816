/**
 * The snapshot fidelity matrix: one column per awkward type or value, copied by `runFlow` in several ranges and
 * chunks, then every row compared by `md5(row::text)` keyed by primary key on both sides, in sessions with the same
 * settings. The same values go through binary COPY (a table of built-in types only) and through text COPY (the same
 * columns plus an enum, an enum[], a domain and a composite). Source and target databases get odd and different
 * defaults (time zone, DateStyle, IntervalStyle, extra_float_digits, bytea_output, xmloption, search_path), so any
 * text form that depended on a server setting instead of Ferry's own session settings would show up as a diff.
 *
 * Not covered, on purpose: `money` (its text form depends on lc_monetary, which Ferry cannot pin for the target's
 * input), and a NUL character in text (PostgreSQL text cannot hold one).
 */
import type pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseFormat, PG_COPY_BINARY, PG_COPY_TEXT } from '../src/adapters/postgres/copy-format.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../src/config/load.js';
import { tableKey } from '../src/core/model.js';
import { silentProgress } from '../src/core/progress.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import {
  BUILTIN_CASES,
  compareClient,
  createMatrix,
  CUSTOM_CASES,
  dump,
  insertMatrix,
  JSON_TEXTS,
  KEYED_TABLES,
  MATRIX_ROWS,
  MATRIX_TYPES,
  oddSettings,
  short,
} from './support/fidelity-matrix.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

const SCHEMA = `
  SET DateStyle = ISO; SET IntervalStyle = postgres;
  ${MATRIX_TYPES}
  ${createMatrix('fid.builtin', BUILTIN_CASES)}
  ${insertMatrix('fid.builtin', BUILTIN_CASES)}
  ${createMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}
  ${insertMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}
  ${KEYED_TABLES.map((t) => `${t.ddl}\n  ${t.fill}`).join('\n\n  ')}
  ANALYZE;
`;

/** Each table, its key expression for the comparison map, and the number of rows it must have on the target. */
const TABLES: { table: string; key: string; rows: number }[] = [
  { table: 'fid.builtin', key: 'id', rows: MATRIX_ROWS },
  { table: 'fid.custom', key: 'id', rows: MATRIX_ROWS },
  ...KEYED_TABLES.map(({ table, key, rows }) => ({ table, key, rows })),
];

describe('snapshot fidelity', () => {
  let urls: { sourceUrl: string; targetUrl: string };
  let src: pg.Client;
  let dst: pg.Client;
  let statePath: string;

  beforeAll(async () => {
    urls = await freshDatabases(pair(), 'fid');
    // Odd, different defaults on each side. Ferry's sessions must not depend on any of them.
    const odd = oddSettings('fid_src', 'fid_dst');
    await query(urls.sourceUrl, odd.source);
    await query(urls.targetUrl, odd.target);
    const [s] = await query(urls.sourceUrl, `SELECT current_setting('TimeZone') tz, current_setting('DateStyle') ds`);
    const [t] = await query(urls.targetUrl, `SELECT current_setting('TimeZone') tz, current_setting('DateStyle') ds`);
    expect(s).toEqual({ tz: 'Asia/Kathmandu', ds: 'SQL, DMY' });
    expect(t).toEqual({ tz: 'America/St_Johns', ds: 'SQL, MDY' });

    await query(urls.sourceUrl, SCHEMA);
    statePath = join(mkdtempSync(join(tmpdir(), 'ferry-fid-')), 'state.db');
    const config = parseConfig({
      name: 'fid',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['fid.*', 'Sales Dept.*'],
      rowsPerRange: 4,
      batchRows: 3,
      workers: 3,
      state: { path: statePath },
    });
    const result = await runFlow({ config, progress: silentProgress });
    expect(result.interrupted).toBe(false);
    [src, dst] = await Promise.all([compareClient(urls.sourceUrl), compareClient(urls.targetUrl)]);
  });
  afterAll(async () => {
    await Promise.allSettled([src?.end(), dst?.end()]);
  });

  it.each(TABLES)('$table: every row identical (md5 of row text by key), and the row count', async ({ table, key, rows }) => {
    const [a, b] = await Promise.all([dump(src, table, key), dump(dst, table, key)]);
    expect(a.size, `source ${table}`).toBe(rows);
    const [{ n }] = (await dst.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows as [{ n: string }];
    expect(Number(n), `target ${table} row count`).toBe(rows);
    expect(b.size).toBe(rows);
    const diffs = [...a].filter(([k, v]) => b.get(k)?.h !== v.h).map(([k, v]) => `key ${k}:\n  source ${short(v.text)}\n  target ${short(b.get(k)?.text)}`);
    expect(diffs, diffs.join('\n')).toEqual([]);
    expect(new Map([...b].map(([k, v]) => [k, v.h]))).toEqual(new Map([...a].map(([k, v]) => [k, v.h])));
  });

  it('keeps every json value byte for byte (key order, duplicate keys, whitespace, escapes)', async () => {
    for (const table of ['fid.builtin', 'fid.custom']) {
      const { rows } = await dst.query<{ j: string | null }>(`SELECT j::text AS j FROM ${table} ORDER BY id`);
      expect(rows.slice(0, JSON_TEXTS.length).map((r) => r.j), table).toEqual(JSON_TEXTS);
      expect(rows.slice(JSON_TEXTS.length).every((r) => r.j === null)).toBe(true);
    }
  });

  it('keeps NULL apart from the text "NULL" and "\\N", and the all-NULL row NULL in every column', async () => {
    for (const table of ['fid.builtin', 'fid.custom']) {
      const { rows } = await dst.query<{ nonnull: string; texts: string }>(
        `SELECT (SELECT count(*) FROM jsonb_each(to_jsonb(t)) WHERE value <> 'null'::jsonb)::text AS nonnull,
                (SELECT string_agg(coalesce(txt, '<null>'), '|' ORDER BY id) FROM ${table}
                 WHERE txt IN ('NULL', E'\\\\N') OR txt IS NULL) AS texts
         FROM ${table} t WHERE id = ${MATRIX_ROWS}`,
      );
      expect(rows[0]).toEqual({ nonnull: '1', texts: `\\N|NULL|${Array(MATRIX_ROWS - 10).fill('<null>').join('|')}` });
    }
  });

  it('copies the built-in table in binary COPY and the one with user-defined types in text COPY, in several chunks', async () => {
    const store = new SqliteStateStore(statePath);
    try {
      const flow = await store.getFlow('fid');
      const jobs = await store.listJobs('fid');
      expect(flow?.phase).toBe('done');
      const accepted = [PG_COPY_BINARY, PG_COPY_TEXT];
      const formats = Object.fromEntries(flow!.tables.map((t) => [tableKey(t.source), chooseFormat(t, accepted)]));
      expect(formats).toEqual({
        'fid.builtin': PG_COPY_BINARY,
        'fid.custom': PG_COPY_TEXT,
        'fid.ts_keyed': PG_COPY_BINARY,
        'fid.tstz_keyed': PG_COPY_BINARY,
        'fid.num_keyed': PG_COPY_BINARY,
        'fid.float_keyed': PG_COPY_BINARY,
        'fid.text_keyed': PG_COPY_BINARY,
        'fid.composite_keyed': PG_COPY_BINARY,
        'Sales Dept.Order Items': PG_COPY_BINARY,
      });
      for (const t of Object.keys(formats)) {
        const mine = jobs.filter((j) => j.table === t);
        expect(mine.length, `${t}: ranges`).toBeGreaterThan(1);
        expect(mine.every((j) => j.status === 'done'), t).toBe(true);
        // A job with more rows than batchRows committed more than one chunk.
        expect(mine.some((j) => j.rows > 3), `${t}: a range of several chunks`).toBe(true);
      }
    } finally {
      await store.close();
    }
  });

  it('recreates quoted identifiers, the enum labels, the domain check and the composite type on the target', async () => {
    const cols = await dst.query<{ c: string }>(
      `SELECT string_agg(attname, '|' ORDER BY attnum) AS c FROM pg_attribute
       WHERE attrelid = '"Sales Dept"."Order Items"'::regclass AND attnum > 0`,
    );
    expect(cols.rows[0]?.c).toBe('select|Weird "Quote"|MiXeD|from to');
    const labels = await dst.query<{ l: string }>(`SELECT enum_range(NULL::fid.mood)::text AS l`);
    expect(labels.rows[0]?.l).toBe(`{sad,ok,happy,"it's \\"fine\\"","ünï cødé, {braces}"}`);
    await expect(dst.query(`SELECT '-1'::fid.posnum`)).rejects.toThrow(/posnum_check/);
  });
});
