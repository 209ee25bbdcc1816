/**
 * The fidelity matrix shared by the snapshot test (test/fidelity.test.ts) and the CDC one (test/cdc-fidelity.test.ts):
 * one column per awkward type or value, tables keyed by awkward types, the odd database settings both sides get, and
 * the comparison (md5 of each row's text, keyed by primary key, in sessions with identical settings).
 *
 * Not covered, on purpose: `money` (its text form depends on lc_monetary, which Ferry cannot pin for the target's
 * input), and a NUL character in text (PostgreSQL text cannot hold one).
 */
import pg from 'pg';
import { rawTypes } from '../../src/adapters/postgres/connect.js';

/** A SQL string literal (standard_conforming_strings is on: backslashes are literal). */
export const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;

export interface Case {
  col: string;
  type: string;
  /** SQL expressions; row i gets values[i] (cast to `type`), or NULL when the list is shorter. */
  values: string[];
}

/** json must arrive byte for byte: odd key order, duplicate keys, whitespace, escapes kept as written. */
export const JSON_TEXTS = [
  '{"b":1,  "a":2,"a":3}',
  '  [1, 2 ,3 ]  ',
  '{\n\t"nested" : {"y":[true,false,null]},\r\n "x":1e1000 }',
  '{"u":"\\u00e9\\ud83e\\udd80","esc":"tab\\t \\"q\\" \\\\"}',
  'null',
  '"just a string"',
  '{}',
  '-0.000000000000000000000000000001',
];

export const BUILTIN_CASES: Case[] = [
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
export const CUSTOM_CASES: Case[] = [
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

export const MATRIX_ROWS = Math.max(...[...BUILTIN_CASES, ...CUSTOM_CASES].map((c) => c.values.length)) + 1; // + the all-NULL row

export function createMatrix(table: string, cases: Case[]): string {
  return `CREATE TABLE ${table} (id int PRIMARY KEY, ${cases.map((c) => `${c.col} ${c.type}`).join(', ')});`;
}

/** The SQL values of matrix row i (0-based) for `cases`: each value cast to its type, or NULL when the case has fewer. */
export function matrixRow(cases: Case[], i: number): string[] {
  return cases.map((c) => (c.values[i] === undefined ? 'NULL' : `(${c.values[i]})::${c.type}`));
}

/**
 * Row i holds the i-th value of every case; the last row is NULL in every column but the key. `rows` picks some of
 * the rows (0-based), `idOffset` shifts their keys (row i gets id `idOffset + i + 1`).
 */
export function insertMatrix(table: string, cases: Case[], opts: { rows?: number[]; idOffset?: number } = {}): string {
  const picked = opts.rows ?? Array.from({ length: MATRIX_ROWS }, (_, i) => i);
  const rows = picked.map((i) => `(${(opts.idOffset ?? 0) + i + 1}, ${matrixRow(cases, i).join(', ')})`);
  return `INSERT INTO ${table} (id, ${cases.map((c) => c.col).join(', ')}) VALUES\n${rows.join(',\n')};`;
}

export const TEXT_KEYS = [
  '', ' ', 'a', 'A', 'Z', 'é', 'e\u0301', '🦀', "it's", 'back\\slash', 'tab\tkey', 'new\nline', '"quoted"', 'NULL', '\\N',
  'שלום', 'مرحبا', '{a,b}', '(x,y)', 'zzz', '~', 'ÿ',
];

/**
 * The comparison sessions: identical settings on both sides, none of them Ferry's (UTC) nor either database's
 * default, so both sides print every value the same way whatever each server's defaults are.
 */
export const COMPARE_OPTIONS =
  '-c TimeZone=Pacific/Chatham -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 ' +
  '-c bytea_output=hex -c search_path=pg_catalog';

export async function compareClient(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, types: rawTypes, options: COMPARE_OPTIONS });
  await c.connect();
  return c;
}

export type Dump = Map<string, { h: string; text: string }>;

export async function dump(c: pg.Client, table: string, key: string): Promise<Dump> {
  const { rows } = await c.query<{ k: string; h: string; text: string }>(
    `SELECT ${key.startsWith('(') ? `ROW${key}` : key}::text AS k, md5(t::text) AS h, t::text AS text FROM ${table} t`,
  );
  return new Map(rows.map((r) => [r.k, { h: r.h, text: r.text }]));
}

export const short = (s: string | undefined) => (s === undefined ? '(missing)' : s.length > 400 ? `${s.slice(0, 400)}…` : s);


/** The schema `fid` and its user-defined types: an enum, a domain over numeric, a composite. */
export const MATRIX_TYPES = `
  CREATE SCHEMA fid;
  CREATE TYPE fid.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"', 'ünï cødé, {braces}');
  CREATE DOMAIN fid.posnum AS numeric(38,10) CHECK (VALUE > 0);
  CREATE TYPE fid.pair AS (n numeric, s text, t timestamptz, i interval, f float8);
`;

/** A table keyed by an awkward type: its DDL, the statement that fills it, and how many rows that makes. */
export interface KeyedTable {
  table: string;
  /** The key expression for the comparison map. */
  key: string;
  ddl: string;
  fill: string;
  rows: number;
}

/** Keys of awkward types: range and cursor boundaries (snapshot) and key predicates (stream) travel as text. */
export const KEYED_TABLES: KeyedTable[] = [
  {
    table: 'fid.ts_keyed',
    key: 'k',
    ddl: `CREATE TABLE fid.ts_keyed (k timestamp PRIMARY KEY, v text);`,
    fill: `INSERT INTO fid.ts_keyed SELECT timestamp '2024-03-10 00:00:00.000001' + g * interval '7 minutes 0.123457 seconds', 'r' || g
    FROM generate_series(0, 39) g;
  INSERT INTO fid.ts_keyed VALUES ('infinity', 'inf'), ('-infinity', '-inf'), ('0001-01-01', 'first'), ('4713-01-01 BC', 'bc');`,
    rows: 44,
  },
  {
    table: 'fid.tstz_keyed',
    key: 'k',
    ddl: `CREATE TABLE fid.tstz_keyed (k timestamptz PRIMARY KEY, v text);`,
    fill: `INSERT INTO fid.tstz_keyed SELECT timestamptz '2024-11-03 00:00:00.5 America/New_York' + g * interval '3 minutes 0.000001 seconds', 'r' || g
    FROM generate_series(0, 39) g;
  INSERT INTO fid.tstz_keyed VALUES ('infinity', 'inf'), ('1900-01-01 00:00:00 Asia/Kathmandu', 'lmt'), ('0001-01-01 00:00:00+00', 'first');`,
    rows: 43,
  },
  {
    table: 'fid.num_keyed',
    key: 'k',
    ddl: `CREATE TABLE fid.num_keyed (k numeric PRIMARY KEY, v text);`,
    fill: `INSERT INTO fid.num_keyed SELECT g * 12345678901234567890123456.78901234567890123 / 7, 'r' || g FROM generate_series(-20, 19) g;
  INSERT INTO fid.num_keyed VALUES ('NaN', 'nan'), ('Infinity', 'inf'), ('-Infinity', '-inf'), (1e-100, 'tiny');`,
    rows: 44,
  },
  {
    table: 'fid.float_keyed',
    key: 'k',
    ddl: `CREATE TABLE fid.float_keyed (k float8 PRIMARY KEY, v text);`,
    fill: `INSERT INTO fid.float_keyed SELECT g * 0.1::float8, 'r' || g FROM generate_series(-20, 19) g;
  INSERT INTO fid.float_keyed VALUES ('NaN', 'nan'), ('Infinity', 'inf'), ('-Infinity', '-inf'), ('1e-310', 'subnormal'), ('5e-324', 'min');`,
    rows: 45,
  },
  {
    table: 'fid.text_keyed',
    key: 'k',
    ddl: `CREATE TABLE fid.text_keyed (k text PRIMARY KEY, v int);`,
    fill: `INSERT INTO fid.text_keyed VALUES ${TEXT_KEYS.map((k, i) => `(${lit(k)}, ${i})`).join(', ')};
  INSERT INTO fid.text_keyed SELECT 'key ' || g, g FROM generate_series(100, 119) g;`,
    rows: TEXT_KEYS.length + 20,
  },
  {
    table: 'fid.composite_keyed',
    key: '(a, b, c)',
    ddl: `CREATE TABLE fid.composite_keyed (a timestamptz, b text, c numeric, v text, PRIMARY KEY (a, b, c));`,
    fill: `INSERT INTO fid.composite_keyed
    SELECT timestamptz '2024-03-10 06:00:00.000001+00' + (g % 4) * interval '1 hour', 'k' || (g % 3) || E'\\t,"', g / 7.0, 'r' || g
    FROM generate_series(1, 40) g;`,
    rows: 40,
  },
  {
    table: '"Sales Dept"."Order Items"',
    key: '"select"',
    ddl: `CREATE SCHEMA "Sales Dept";
  CREATE TABLE "Sales Dept"."Order Items" ("select" int PRIMARY KEY, "Weird ""Quote""" text, "MiXeD" numeric, "from to" date);`,
    fill: `INSERT INTO "Sales Dept"."Order Items"
    SELECT g, 'q"' || g || '"', g * 1.5, date '2024-01-01' + g FROM generate_series(1, 12) g;
  INSERT INTO "Sales Dept"."Order Items" VALUES (100, NULL, NULL, NULL);`,
    rows: 13,
  },
];

/**
 * Odd, different database defaults on each side (time zone, DateStyle, IntervalStyle, extra_float_digits,
 * bytea_output, xmloption, search_path). Ferry's sessions, the replication one included, must not depend on any.
 */
export function oddSettings(sourceDb: string, targetDb: string): { source: string; target: string } {
  return {
    source: `ALTER DATABASE ${sourceDb} SET timezone = 'Asia/Kathmandu';
       ALTER DATABASE ${sourceDb} SET DateStyle = 'SQL, DMY';
       ALTER DATABASE ${sourceDb} SET IntervalStyle = 'sql_standard';
       ALTER DATABASE ${sourceDb} SET extra_float_digits = -3;
       ALTER DATABASE ${sourceDb} SET bytea_output = 'escape';
       ALTER DATABASE ${sourceDb} SET search_path = '"Sales Dept"', fid;`,
    target: `ALTER DATABASE ${targetDb} SET timezone = 'America/St_Johns';
       ALTER DATABASE ${targetDb} SET DateStyle = 'SQL, MDY';
       ALTER DATABASE ${targetDb} SET IntervalStyle = 'iso_8601';
       ALTER DATABASE ${targetDb} SET xmloption = 'document';
       ALTER DATABASE ${targetDb} SET search_path = nowhere;`,
  };
}
