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
import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { chooseFormat, PG_COPY_BINARY, PG_COPY_TEXT } from '../src/adapters/postgres/copy-format.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../src/config/load.js';
import { tableKey } from '../src/core/model.js';
import { silentProgress } from '../src/core/progress.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { freshDatabases, query, startPair, type PgPair } from './support/pg-pair.js';

let pair: PgPair;
beforeAll(async () => {
  pair = await startPair();
});
afterAll(async () => {
  await pair?.stop();
});

/** A SQL string literal (standard_conforming_strings is on: backslashes are literal). */
const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

interface Case {
  col: string;
  type: string;
  /** SQL expressions; row i gets values[i] (cast to `type`), or NULL when the list is shorter. */
  values: string[];
}

/** json must arrive byte for byte: odd key order, duplicate keys, whitespace, escapes kept as written. */
const JSON_TEXTS = [
  '{"b":1,  "a":2,"a":3}',
  '  [1, 2 ,3 ]  ',
  '{\n\t"nested" : {"y":[true,false,null]},\r\n "x":1e1000 }',
  '{"u":"\\u00e9\\ud83e\\udd80","esc":"tab\\t \\"q\\" \\\\"}',
  'null',
  '"just a string"',
  '{}',
  '-0.000000000000000000000000000001',
];

const BUILTIN_CASES: Case[] = [
  {
    col: 'n38',
    type: 'numeric',
    values: [
      '12345678901234567890123456789012345678',
      '-99999999999999999999999999999999999999',
      '0.00000000000000000000000000000000000001',
      `'NaN'`,
      `'Infinity'`,
      `'-Infinity'`,
      '-0.000',
      '1e-300',
      '12345678901234567890.123456789012345678',
    ],
  },
  {
    col: 'n38s',
    type: 'numeric(38,10)',
    values: [
      '1234567890123456789012345678.0123456789',
      '-9999999999999999999999999999.9999999999',
      '0.0000000001',
      `'NaN'`,
      '0',
      '-0.0000000001',
      '42.5',
    ],
  },
  { col: 'i8', type: 'int8', values: ['-9223372036854775808', '9223372036854775807', '0', '-1', '9007199254740993'] },
  { col: 'i4', type: 'int4', values: ['-2147483648', '2147483647', '0'] },
  { col: 'i2', type: 'int2', values: ['-32768', '32767', '0'] },
  {
    col: 'f4',
    type: 'float4',
    values: [`'0.1'`, `'1e-40'`, `'NaN'`, `'-0'`, `'Infinity'`, `'-Infinity'`, `'3.4028235e38'`, `'1.4e-45'`, `'16777217'`],
  },
  {
    col: 'f8',
    type: 'float8',
    values: [
      `'0.1'`,
      `'1e-310'`,
      `'NaN'`,
      `'-0'`,
      `'Infinity'`,
      `'-Infinity'`,
      `'0.30000000000000004'`,
      `'1.7976931348623157e308'`,
      `'5e-324'`,
      `'2.2250738585072014e-308'`,
    ],
  },
  {
    col: 'ts',
    type: 'timestamp',
    values: [
      `'0001-01-01 00:00:00'`,
      `'infinity'`,
      `'-infinity'`,
      `'2024-03-10 02:30:00'`,
      `'2024-11-03 01:30:00.123456'`,
      `'1999-12-31 23:59:59.999999'`,
      `'4713-01-01 00:00:00 BC'`,
      `'294276-12-31 23:59:59.999999'`,
      `'2024-02-29 12:00:00.000001'`,
    ],
  },
  {
    col: 'tstz',
    type: 'timestamptz',
    values: [
      `'0001-01-01 00:00:00+00'`,
      `'infinity'`,
      `'-infinity'`,
      `'2024-03-10 02:30:00 America/New_York'`,
      `'2024-11-03 01:30:00.654321-04'`,
      `'1900-01-01 00:00:00 Asia/Kathmandu'`,
      `'2024-06-30 12:00:00.000001+05:45'`,
      // No offset: read in the inserting session's zone (the source database's Asia/Kathmandu).
      `'2024-01-01 00:00:00'`,
    ],
  },
  { col: 'd', type: 'date', values: [`'0001-01-01'`, `'4713-01-01 BC'`, `'infinity'`, `'-infinity'`, `'2024-02-29'`, `'5874897-12-31'`, `'2024-03-10'`] },
  { col: 'tm', type: 'time', values: [`'00:00:00'`, `'23:59:59.999999'`, `'24:00:00'`, `'12:34:56.789'`] },
  { col: 'ttz', type: 'timetz', values: [`'00:00:00+14'`, `'23:59:59.999999-12'`, `'12:00:00+05:45'`, `'01:02:03.456789+13:45'`, `'24:00:00-15:59'`] },
  {
    col: 'iv',
    type: 'interval',
    values: [
      `'1 year 2 mons 3 days 04:05:06.789012'`,
      `'-1 year -2 mons +3 days -04:05:06.000001'`,
      `'1 mon -30 days'`,
      `'-178000000 years'`,
      `'0'`,
      `'999999 days 23:59:59.999999'`,
      `'-00:00:00.000001'`,
      `'1 day -1 second'`,
    ],
  },
  { col: 'j', type: 'json', values: JSON_TEXTS.map(lit) },
  {
    col: 'jb',
    type: 'jsonb',
    values: [
      `'{"b":1,"a":[1,2,{"c":null}]}'`,
      `'{"a":1,"a":2}'`,
      `'"\\u00e9\\ud83e\\udd80"'`,
      `'1e1000'`,
      `'{"n": 0.10000000000000000000001, "m": -0}'`,
      `'[]'`,
      `'null'`,
    ],
  },
  { col: 'ia', type: 'int[]', values: [`'{}'`, `'{1,NULL,3}'`, `'{{1,2},{3,4}}'`, `'[0:2]={7,8,9}'`, `'{-2147483648,2147483647}'`, `'[-3:-2][5:6]={{1,2},{3,4}}'`] },
  {
    col: 'ta',
    type: 'text[]',
    values: [
      `ARRAY['a,b', 'c"d', '{braces}', NULL, 'NULL', '', E'back\\\\slash', ' spaced ', E'tab\\there\\nnewline', '(x)']`,
      `'{}'`,
      `ARRAY[['a','b'],['c',NULL]]`,
      `ARRAY['ü', '🦀', E'e\\u0301', 'שלום']`,
      `ARRAY[NULL, NULL]::text[]`,
    ],
  },
  { col: 'f8a', type: 'float8[]', values: [`'{0.1,NaN,-0,Infinity,1e-310,0.30000000000000004}'`] },
  { col: 'na', type: 'numeric[]', values: [`'{NaN,Infinity,-Infinity,12345678901234567890123456789012345678,0.000}'`] },
  { col: 'tsa', type: 'timestamptz[]', values: [`ARRAY['2024-03-10 02:30:00 America/New_York'::timestamptz, 'infinity', NULL]`] },
  {
    col: 'ba',
    type: 'bytea',
    values: [
      `'\\x'`,
      `'\\x00'`,
      `'\\x000102ff00'`,
      `(SELECT decode(string_agg(lpad(to_hex(b), 2, '0'), '' ORDER BY b), 'hex') FROM generate_series(0, 255) b)`,
      `'\\x5c4e'`, // the two bytes of "\N"
      `convert_to(repeat('bytes ', 2000), 'UTF8')`,
    ],
  },
  { col: 'u', type: 'uuid', values: [`'00000000-0000-0000-0000-000000000000'`, `'ffffffff-ffff-ffff-ffff-ffffffffffff'`, `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`] },
  { col: 'ip', type: 'inet', values: [`'192.168.0.1/24'`, `'::1'`, `'2001:db8::ff00:42:8329/64'`, `'10.0.0.1'`, `'::ffff:1.2.3.4'`] },
  { col: 'cid', type: 'cidr', values: [`'10.0.0.0/8'`, `'2001:db8::/32'`, `'192.168.1.0/24'`, `'0.0.0.0/0'`] },
  { col: 'mac', type: 'macaddr', values: [`'08:00:2b:01:02:03'`, `'ff:ff:ff:ff:ff:ff'`, `'00:00:00:00:00:00'`] },
  { col: 'mac8', type: 'macaddr8', values: [`'08:00:2b:01:02:03:04:05'`] },
  { col: 'vb', type: 'bit varying', values: [`B''`, `B'1'`, `B'1010101010101'`, `B'${'0'.repeat(66)}1'`] },
  { col: 'b8', type: 'bit(8)', values: [`B'10000001'`, `B'00000000'`] },
  {
    col: 'tsv',
    type: 'tsvector',
    values: [`'a fat cat sat on a mat'`, `$$'it''s':1A,2B 'back\\\\slash' 'x y':3C$$`, `to_tsvector('english', 'The quick brown foxes jumped')`, `''`],
  },
  { col: 'tsq', type: 'tsquery', values: [`'fat & (rat | cat) & !dog'`, `'''it''''s'' <2> x:*'`] },
  { col: 'pt', type: 'point', values: [`'(0,0)'`, `'(1.5,-2.25)'`, `'(0.1,0.30000000000000004)'`, `'(NaN,Infinity)'`, `'(1e-310,-0)'`] },
  { col: 'bx', type: 'box', values: [`'((0,0),(1,1))'`, `'((-0.1,2e-310),(3.5,1e300))'`] },
  { col: 'ir', type: 'int4range', values: [`'[1,10)'`, `'empty'`, `'(,5]'`, `'(,)'`] },
  { col: 'tr', type: 'tstzrange', values: [`'[2024-03-10 02:30:00 America/New_York, infinity)'`, `'(,2000-01-01 00:00:00.000001+13)'`] },
  { col: 'imr', type: 'int4multirange', values: [`'{[1,3),[5,7)}'`, `'{}'`] },
  {
    col: 'x',
    type: 'xml',
    // Content fragments, not documents: the target database defaults to xmloption = document.
    values: [`'<a b="1">x &amp; y</a>'`, `'text before <b>bold</b> after'`, `'<?xml version="1.0"?><r>é</r>'`, `''`],
  },
  {
    col: 'txt',
    type: 'text',
    values: [
      `'emoji 🦀 👩‍👩‍👧 flags 🇳🇵'`,
      `E'combining e\\u0301 vs \\u00e9, zero width \\u200b joiner'`,
      `'RTL: שלום עולם / مرحبا بالعالم'`,
      `E'tab\\there\\nnewline\\r\\nCRLF\\\\backslash'`,
      `E'\\\\N'`, // the text "\N": COPY's NULL marker, as data
      `E'line\\n\\\\.\\nafter'`, // "\." on a line of its own: the old end-of-copy marker
      `''`,
      `'NULL'`,
      `repeat('toasted 🦀 ', 20000)`,
      `' leading and trailing spaces '`,
    ],
  },
  { col: 'ch', type: 'char(5)', values: [`'ab'`, `''`, `'abcde'`] },
  { col: 'vc', type: 'varchar(10)', values: [`'ab '`, `''`] },
  { col: 'bo', type: 'boolean', values: ['true', 'false'] },
  { col: 'lsn', type: 'pg_lsn', values: [`'16/B374D848'`, `'0/0'`, `'FFFFFFFF/FFFFFFFF'`] },
];

/** Only in the text-COPY table: user-defined types (the target's OIDs differ, so binary COPY is ruled out). */
const CUSTOM_CASES: Case[] = [
  { col: 'mood', type: 'fid.mood', values: [`'sad'`, `'it''s "fine"'`, `'ünï cødé, {braces}'`, `'happy'`] },
  {
    col: 'moods',
    type: 'fid.mood[]',
    values: [`ARRAY['sad', 'it''s "fine"', NULL]`, `'{}'`, `ARRAY[['sad','ok'],['happy','ünï cødé, {braces}']]`, `'[2:3]={ok,happy}'`],
  },
  { col: 'pos', type: 'fid.posnum', values: ['0.0000000001', '1234567890123456789012345678.0123456789', '1'] },
  {
    col: 'pair',
    type: 'fid.pair',
    values: [
      `ROW(1.5, 'a,"b"(c) \\ d', '2024-03-10 02:30:00 America/New_York', '1 mon -1 days', 0.1)`,
      `ROW(NULL, '', NULL, NULL, NULL)`,
      `ROW('NaN', E'back\\\\slash\\nnewline', 'infinity', '-178000000 years', '-0')`,
    ],
  },
  {
    col: 'pairs',
    type: 'fid.pair[]',
    values: [`ARRAY[ROW(1, 'x', '0001-01-01 00:00:00+00', '1 day', 1e-310)::fid.pair, NULL, ROW(NULL, NULL, NULL, NULL, NULL)::fid.pair]`],
  },
];

const MATRIX_ROWS = Math.max(...[...BUILTIN_CASES, ...CUSTOM_CASES].map((c) => c.values.length)) + 1; // + the all-NULL row

function createMatrix(table: string, cases: Case[]): string {
  return `CREATE TABLE ${table} (id int PRIMARY KEY, ${cases.map((c) => `${c.col} ${c.type}`).join(', ')});`;
}

/** Row i holds the i-th value of every case; the last row is NULL in every column but the key. */
function insertMatrix(table: string, cases: Case[]): string {
  const rows: string[] = [];
  for (let i = 0; i < MATRIX_ROWS; i++) {
    const vals = cases.map((c) => (c.values[i] === undefined ? 'NULL' : `(${c.values[i]})::${c.type}`));
    rows.push(`(${i + 1}, ${vals.join(', ')})`);
  }
  return `INSERT INTO ${table} (id, ${cases.map((c) => c.col).join(', ')}) VALUES\n${rows.join(',\n')};`;
}

const TEXT_KEYS = [
  '', ' ', 'a', 'A', 'Z', 'é', 'e\u0301', '🦀', "it's", 'back\\slash', 'tab\tkey', 'new\nline', '"quoted"', 'NULL', '\\N',
  'שלום', 'مرحبا', '{a,b}', '(x,y)', 'zzz', '~', 'ÿ',
];

const SCHEMA = `
  SET DateStyle = ISO; SET IntervalStyle = postgres;
  CREATE SCHEMA fid;
  CREATE TYPE fid.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"', 'ünï cødé, {braces}');
  CREATE DOMAIN fid.posnum AS numeric(38,10) CHECK (VALUE > 0);
  CREATE TYPE fid.pair AS (n numeric, s text, t timestamptz, i interval, f float8);

  ${createMatrix('fid.builtin', BUILTIN_CASES)}
  ${insertMatrix('fid.builtin', BUILTIN_CASES)}
  ${createMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}
  ${insertMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}

  -- Keys of awkward types, over several ranges and chunks: the range and cursor boundaries travel as text.
  CREATE TABLE fid.ts_keyed (k timestamp PRIMARY KEY, v text);
  INSERT INTO fid.ts_keyed SELECT timestamp '2024-03-10 00:00:00.000001' + g * interval '7 minutes 0.123457 seconds', 'r' || g
    FROM generate_series(0, 39) g;
  INSERT INTO fid.ts_keyed VALUES ('infinity', 'inf'), ('-infinity', '-inf'), ('0001-01-01', 'first'), ('4713-01-01 BC', 'bc');

  CREATE TABLE fid.tstz_keyed (k timestamptz PRIMARY KEY, v text);
  INSERT INTO fid.tstz_keyed SELECT timestamptz '2024-11-03 00:00:00.5 America/New_York' + g * interval '3 minutes 0.000001 seconds', 'r' || g
    FROM generate_series(0, 39) g;
  INSERT INTO fid.tstz_keyed VALUES ('infinity', 'inf'), ('1900-01-01 00:00:00 Asia/Kathmandu', 'lmt'), ('0001-01-01 00:00:00+00', 'first');

  CREATE TABLE fid.num_keyed (k numeric PRIMARY KEY, v text);
  INSERT INTO fid.num_keyed SELECT g * 12345678901234567890123456.78901234567890123 / 7, 'r' || g FROM generate_series(-20, 19) g;
  INSERT INTO fid.num_keyed VALUES ('NaN', 'nan'), ('Infinity', 'inf'), ('-Infinity', '-inf'), (1e-100, 'tiny');

  CREATE TABLE fid.float_keyed (k float8 PRIMARY KEY, v text);
  INSERT INTO fid.float_keyed SELECT g * 0.1::float8, 'r' || g FROM generate_series(-20, 19) g;
  INSERT INTO fid.float_keyed VALUES ('NaN', 'nan'), ('Infinity', 'inf'), ('-Infinity', '-inf'), ('1e-310', 'subnormal'), ('5e-324', 'min');

  CREATE TABLE fid.text_keyed (k text PRIMARY KEY, v int);
  INSERT INTO fid.text_keyed VALUES ${TEXT_KEYS.map((k, i) => `(${lit(k)}, ${i})`).join(', ')};
  INSERT INTO fid.text_keyed SELECT 'key ' || g, g FROM generate_series(100, 119) g;

  CREATE TABLE fid.composite_keyed (a timestamptz, b text, c numeric, v text, PRIMARY KEY (a, b, c));
  INSERT INTO fid.composite_keyed
    SELECT timestamptz '2024-03-10 06:00:00.000001+00' + (g % 4) * interval '1 hour', 'k' || (g % 3) || E'\\t,"', g / 7.0, 'r' || g
    FROM generate_series(1, 40) g;

  CREATE SCHEMA "Sales Dept";
  CREATE TABLE "Sales Dept"."Order Items" ("select" int PRIMARY KEY, "Weird ""Quote""" text, "MiXeD" numeric, "from to" date);
  INSERT INTO "Sales Dept"."Order Items"
    SELECT g, 'q"' || g || '"', g * 1.5, date '2024-01-01' + g FROM generate_series(1, 12) g;
  INSERT INTO "Sales Dept"."Order Items" VALUES (100, NULL, NULL, NULL);
  ANALYZE;
`;

/** Each table, its key expression for the comparison map, and the number of rows it must have on the target. */
const TABLES: { table: string; key: string; rows: number }[] = [
  { table: 'fid.builtin', key: 'id', rows: MATRIX_ROWS },
  { table: 'fid.custom', key: 'id', rows: MATRIX_ROWS },
  { table: 'fid.ts_keyed', key: 'k', rows: 44 },
  { table: 'fid.tstz_keyed', key: 'k', rows: 43 },
  { table: 'fid.num_keyed', key: 'k', rows: 44 },
  { table: 'fid.float_keyed', key: 'k', rows: 45 },
  { table: 'fid.text_keyed', key: 'k', rows: TEXT_KEYS.length + 20 },
  { table: 'fid.composite_keyed', key: '(a, b, c)', rows: 40 },
  { table: '"Sales Dept"."Order Items"', key: '"select"', rows: 13 },
];

/**
 * The comparison sessions: identical settings on both sides, none of them Ferry's (UTC) nor either database's
 * default, so both sides print every value the same way whatever each server's defaults are.
 */
const COMPARE_OPTIONS =
  '-c TimeZone=Pacific/Chatham -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 ' +
  '-c bytea_output=hex -c search_path=pg_catalog';

async function compareClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: rawTypes, options: COMPARE_OPTIONS });
  await c.connect();
  return c;
}

type Dump = Map<string, { h: string; text: string }>;

async function dump(c: pg.Client, table: string, key: string): Promise<Dump> {
  const { rows } = await c.query<{ k: string; h: string; text: string }>(
    `SELECT ${key.startsWith('(') ? `ROW${key}` : key}::text AS k, md5(t::text) AS h, t::text AS text FROM ${table} t`,
  );
  return new Map(rows.map((r) => [r.k, { h: r.h, text: r.text }]));
}

const short = (s: string | undefined) => (s === undefined ? '(missing)' : s.length > 400 ? `${s.slice(0, 400)}…` : s);

describe('snapshot fidelity', () => {
  let urls: { sourceUrl: string; targetUrl: string };
  let src: pg.Client;
  let dst: pg.Client;
  let statePath: string;

  beforeAll(async () => {
    urls = await freshDatabases(pair, 'fid');
    // Odd, different defaults on each side. Ferry's sessions must not depend on any of them.
    await query(
      urls.sourceUrl,
      `ALTER DATABASE fid_src SET timezone = 'Asia/Kathmandu';
       ALTER DATABASE fid_src SET DateStyle = 'SQL, DMY';
       ALTER DATABASE fid_src SET IntervalStyle = 'sql_standard';
       ALTER DATABASE fid_src SET extra_float_digits = -3;
       ALTER DATABASE fid_src SET bytea_output = 'escape';
       ALTER DATABASE fid_src SET search_path = '"Sales Dept"', fid;`,
    );
    await query(
      urls.targetUrl,
      `ALTER DATABASE fid_dst SET timezone = 'America/St_Johns';
       ALTER DATABASE fid_dst SET DateStyle = 'SQL, MDY';
       ALTER DATABASE fid_dst SET IntervalStyle = 'iso_8601';
       ALTER DATABASE fid_dst SET xmloption = 'document';
       ALTER DATABASE fid_dst SET search_path = nowhere;`,
    );
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
