/**
 * The snapshot's type matrix (test/fidelity.test.ts), driven through CDC with the real CLI: `ferry run` in
 * `mode: snapshot+cdc` starts on (nearly) empty tables, and once it streams, the source receives every row of the
 * matrix, then updates (around out-of-line TOAST values, to NULL and back, whole rows to other rows' values, key
 * moves on awkward key types), deletes, changes to a keyless REPLICA IDENTITY FULL table with duplicate rows, a
 * TRUNCATE, and changes to a table outside the flow. After `ferry stop` (drain), `ferry verify` must agree, and every
 * table must be identical row by row: `md5(row::text)` keyed by primary key (a multiset of row hashes for the keyless
 * table), compared in sessions with identical settings, and json byte for byte.
 *
 * Both databases get the same odd defaults as the snapshot matrix (time zone, DateStyle, IntervalStyle,
 * extra_float_digits, bytea_output, xmloption, search_path): the replication session decodes values with the source
 * database's defaults unless Ferry pins them.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';
import {
  BUILTIN_CASES,
  type Case,
  compareClient,
  createMatrix,
  CUSTOM_CASES,
  dump,
  insertMatrix,
  JSON_TEXTS,
  KEYED_TABLES,
  lit,
  MATRIX_ROWS,
  MATRIX_TYPES,
  matrixRow,
  oddSettings,
  short,
} from './support/fidelity-matrix.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const ALL_CASES = [...BUILTIN_CASES, ...CUSTOM_CASES];
/** The matrix tables: built-in types only (binary COPY in the snapshot), and with user-defined types (text COPY). */
const MATRIX: { table: string; cases: Case[] }[] = [
  { table: 'fid.builtin', cases: BUILTIN_CASES },
  { table: 'fid.custom', cases: ALL_CASES },
];
const TWINS: { table: string; cases: Case[] }[] = [
  { table: 'fid.twin_builtin', cases: BUILTIN_CASES },
  { table: 'fid.twin_custom', cases: ALL_CASES },
];
/** Matrix rows whose big values (bytea of 12 kB, text of 240 kB) are stored out of line. */
const BIG_BYTEA_ID = 1 + BUILTIN_CASES.find((c) => c.col === 'ba')!.values.findIndex((v) => v.startsWith('convert_to'));
const BIG_TEXT_ID = 1 + BUILTIN_CASES.find((c) => c.col === 'txt')!.values.findIndex((v) => v.startsWith('repeat'));
/** Copies of the matrix rows (not the two big ones) per table in the large transaction. */
const BULK_COPIES = 150;
const BULK_TEXT_KEYS = 9000;

/** Every statement batch on the source parses literals the same way, whatever the database's defaults. */
const PARSE = `SET DateStyle = ISO; SET IntervalStyle = postgres;`;

/** Incompressible text (md5 hex) of `n` × 32 characters; with STORAGE EXTERNAL anything over ~2 kB is out of line. */
const big = (seed: string, n = 400) => `(SELECT string_agg(md5(${seed} || ':' || i), '') FROM generate_series(1, ${n}) i)`;
const bigBytea = (seed: string) => `decode(${big(seed, 400)}, 'hex')`;
const bigJsonb = (seed: string) => `(SELECT jsonb_object_agg('k' || i, md5(${seed} || ':' || i)) FROM generate_series(1, 300) i)`;

const setRow = (table: string, cases: Case[], id: number, row: number) =>
  `UPDATE ${table} SET ${matrixRow(cases, row).map((v, k) => `${cases[k]!.col} = ${v}`).join(', ')} WHERE id = ${id};`;
const nullRow = (table: string, cases: Case[], id: number) =>
  `UPDATE ${table} SET ${cases.map((c) => `${c.col} = NULL`).join(', ')} WHERE id = ${id};`;
const bulkCopy = (table: string, cases: Case[]) =>
  `INSERT INTO ${table} (id, ${cases.map((c) => c.col).join(', ')})
   SELECT s.id + 1000 * g, ${cases.map((c) => `s.${c.col}`).join(', ')}
   FROM ${table} s, generate_series(1, ${BULK_COPIES}) g WHERE s.id <= ${MATRIX_ROWS} AND s.id NOT IN (${BIG_BYTEA_ID}, ${BIG_TEXT_ID});`;

const SCHEMA = `
  ${PARSE}
  ${MATRIX_TYPES}
  ${MATRIX.map((m) => createMatrix(m.table, m.cases)).join('\n  ')}
  ${TWINS.map((m) => createMatrix(m.table, m.cases)).join('\n  ')}
  -- Big values are stored out of line (not compressed inline), so an update that leaves them alone sends none.
  ALTER TABLE fid.builtin ALTER COLUMN txt SET STORAGE EXTERNAL, ALTER COLUMN ba SET STORAGE EXTERNAL;
  ALTER TABLE fid.custom ALTER COLUMN txt SET STORAGE EXTERNAL, ALTER COLUMN ba SET STORAGE EXTERNAL;
  ${KEYED_TABLES.map((t) => t.ddl).join('\n  ')}
  -- A key and a full old row: key moves are seen in the old row rather than in a key-only tuple.
  ALTER TABLE fid.composite_keyed REPLICA IDENTITY FULL;

  CREATE TABLE fid.docs (id int PRIMARY KEY, title text, n int, body text, blob bytea, doc jsonb);
  ALTER TABLE fid.docs ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN blob SET STORAGE EXTERNAL,
    ALTER COLUMN doc SET STORAGE EXTERNAL;

  -- No key: every change is matched on the old row, whose text must be what the target prints.
  CREATE TABLE fid.nokey (a int, b text, c bytea, d float8, e timestamptz, f json, g interval, h numeric, big text);
  ALTER TABLE fid.nokey REPLICA IDENTITY FULL;
  ALTER TABLE fid.nokey ALTER COLUMN big SET STORAGE EXTERNAL;
  INSERT INTO fid.nokey SELECT 1, 'dup', '\\x00ff5c4e0a', 0.1, '2024-03-10 02:30:00 America/New_York', '{"b":1,  "a":2}',
    '1 mon -1 days', 1e-30, NULL FROM generate_series(1, 2);

  -- The snapshot copies these; the stream inserts the same values under other keys.
  ${TWINS.map((m) => insertMatrix(m.table, m.cases)).join('\n  ')}

  -- Not in the flow: its changes must never reach the target.
  CREATE SCHEMA outside;
  CREATE TABLE outside.secret (id int PRIMARY KEY, v text);
  INSERT INTO outside.secret VALUES (1, 'before');
  ANALYZE;
`;

/** Matrix rows, keyed tables, bulk: the inserts, in a few transactions. */
const INSERTS_1 = `${PARSE}
  BEGIN;
  ${MATRIX.map((m) => insertMatrix(m.table, m.cases, { rows: [0, 1, 2, 3, 4, 5] })).join('\n  ')}
  ${KEYED_TABLES.slice(0, 3).map((t) => t.fill).join('\n  ')}
  INSERT INTO outside.secret VALUES (2, 'streamed');
  COMMIT;`;

const INSERTS_2 = `${PARSE}
  BEGIN;
  ${MATRIX.map((m) => insertMatrix(m.table, m.cases, { rows: [6, 7, 8, 9, 10] })).join('\n  ')}
  ${KEYED_TABLES.slice(3).map((t) => t.fill).join('\n  ')}
  ${TWINS.map((m) => insertMatrix(m.table, m.cases, { idOffset: 1000 })).join('\n  ')}
  INSERT INTO fid.docs SELECT g, 'doc ' || g, g, ${big("'body' || g")}, ${bigBytea("'blob' || g")}, ${bigJsonb("'doc' || g")}
    FROM generate_series(1, 20) g;
  INSERT INTO fid.nokey SELECT 2, 'pair', '\\x5c', '-0', 'infinity', '[1, 2 ,3 ]', '-178000000 years', 'NaN', ${big("'nokey'")}
    FROM generate_series(1, 2);
  INSERT INTO fid.nokey SELECT 3, E'tab\\there', '\\x', '1e-310', '0001-01-01 00:00:00+00', 'null', '0', -0.000, NULL
    FROM generate_series(1, 3);
  INSERT INTO fid.nokey SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM generate_series(1, 2);
  UPDATE outside.secret SET v = 'changed';
  COMMIT;`;

/** More than one apply chunk (10,000 changes) in one transaction, with rows updated and deleted after insertion. */
const BULK = `${PARSE}
  BEGIN;
  INSERT INTO fid.text_keyed SELECT 'bulk ✓ ' || g || E'\\t"''\\\\', g FROM generate_series(1, ${BULK_TEXT_KEYS}) g;
  ${MATRIX.map((m) => bulkCopy(m.table, m.cases)).join('\n  ')}
  UPDATE fid.text_keyed SET v = -v WHERE k LIKE 'bulk%' AND v % 100 = 0;
  DELETE FROM fid.text_keyed WHERE k LIKE 'bulk%' AND v % 7 = 0;
  DELETE FROM fid.custom WHERE id > 1000 AND id % 13 = 0;
  INSERT INTO outside.secret SELECT g, 'bulk' FROM generate_series(100, 199) g;
  COMMIT;`;

/** Updates: around TOAST values, of TOAST values, whole rows to other rows' values. */
const UPDATES = `${PARSE}
  BEGIN;
  -- Only non-TOAST columns: the out-of-line values are not sent and must be kept.
  UPDATE fid.builtin SET i4 = coalesce(i4, 0) + 1, j = '{"touched" :  true}' WHERE id IN (${BIG_BYTEA_ID}, ${BIG_TEXT_ID});
  UPDATE fid.custom SET mood = 'happy', n38 = n38 * 2 WHERE id IN (${BIG_BYTEA_ID}, ${BIG_TEXT_ID});
  UPDATE fid.docs SET title = 'retitled ' || id, n = n + 1 WHERE id % 3 = 0;
  -- The TOAST values themselves.
  UPDATE fid.docs SET body = ${big("'new body' || id")} WHERE id % 5 = 1;
  UPDATE fid.docs SET blob = ${bigBytea("'new blob' || id")}, doc = ${bigJsonb("'new doc' || id")} WHERE id % 5 = 2;
  -- Many rows of one run: an update of a few columns of bulk rows.
  UPDATE fid.builtin SET i8 = coalesce(i8, 0) - 1, tstz = 'infinity' WHERE id > 1000 AND id % 5 = 0;
  COMMIT;
  BEGIN;
  -- Every column of a row to another matrix row's values (id k gets row k+1's): every type through an UPDATE.
  ${MATRIX.flatMap((m) => [1, 3, 4, 5, 7, 8].map((id) => setRow(m.table, m.cases, id, id % MATRIX_ROWS))).join('\n  ')}
  COMMIT;
  -- To NULL (whole rows, and a TOAST value) ...
  BEGIN;
  ${MATRIX.map((m) => nullRow(m.table, m.cases, 2)).join('\n  ')}
  UPDATE fid.docs SET body = NULL, doc = NULL WHERE id = 4;
  COMMIT;
  -- ... and back, and to NULL and back within one transaction.
  BEGIN;
  ${MATRIX.map((m) => setRow(m.table, m.cases, 2, 1)).join('\n  ')}
  UPDATE fid.docs SET body = ${big("'body' || id")}, doc = ${bigJsonb("'doc' || id")} WHERE id = 4;
  UPDATE fid.custom SET j = NULL, pair = NULL, moods = NULL WHERE id = 10;
  UPDATE fid.custom SET j = ${lit(JSON_TEXTS[0]!)}, pair = ROW(NULL, '', NULL, NULL, NULL), moods = '{}' WHERE id = 10;
  UPDATE fid.docs SET blob = NULL WHERE id = 5;
  UPDATE fid.docs SET blob = ${bigBytea("'blob again' || id")} WHERE id = 5;
  COMMIT;`;

/** Key changes: the row moves. Awkward key types, a composite key, a full old row, TOAST values left in place. */
const KEY_MOVES = `${PARSE}
  BEGIN;
  UPDATE fid.custom SET id = 500 + id WHERE id = ${BIG_TEXT_ID};
  UPDATE fid.builtin SET id = 500 + id, i2 = -1 WHERE id = ${BIG_BYTEA_ID};
  UPDATE fid.docs SET id = id + 1000 WHERE id IN (7, 8, 9);
  UPDATE fid.ts_keyed SET k = k + interval '1 microsecond' WHERE v IN ('r1', 'r2', 'first');
  UPDATE fid.ts_keyed SET k = '294276-12-31 23:59:59.999999' WHERE v = 'inf';
  UPDATE fid.tstz_keyed SET k = k - interval '1 hour 0.000001 seconds' WHERE v IN ('r10', 'lmt');
  UPDATE fid.tstz_keyed SET k = '-infinity' WHERE v = 'inf';
  UPDATE fid.num_keyed SET k = -k - 0.5 WHERE v IN ('r3', 'r-4');
  UPDATE fid.num_keyed SET k = 1e-130 WHERE v = 'nan';
  UPDATE fid.text_keyed SET k = k || ' → 🦀' WHERE v IN (0, 5, 6, 11, 14);
  -- Onto a key deleted in the same transaction.
  DELETE FROM fid.text_keyed WHERE k = 'zzz';
  UPDATE fid.text_keyed SET k = 'zzz', v = 1000 WHERE k = 'ÿ';
  UPDATE fid.composite_keyed SET b = b || 'ü', c = c + 0.5 WHERE v IN ('r1', 'r2', 'r3');
  UPDATE fid.composite_keyed SET a = 'infinity' WHERE v = 'r4';
  UPDATE "Sales Dept"."Order Items" SET "select" = "select" + 1000, "MiXeD" = 'NaN' WHERE "select" IN (3, 4);
  UPDATE "Sales Dept"."Order Items" SET "Weird ""Quote""" = E'new "q"\\n' WHERE "select" = 5;
  UPDATE outside.secret SET id = id + 1000 WHERE id = 1;
  COMMIT;`;

/** Deletes: rows whose key moved, rows inserted in the same transaction. */
const DELETES = `${PARSE}
  BEGIN;
  DELETE FROM fid.builtin WHERE id = ${500 + BIG_BYTEA_ID};
  DELETE FROM fid.docs WHERE id IN (1007, 11);
  DELETE FROM fid.num_keyed WHERE v = 'r3';
  DELETE FROM fid.composite_keyed WHERE v IN ('r2', 'r5');
  DELETE FROM "Sales Dept"."Order Items" WHERE "select" IN (1003, 100);
  DELETE FROM fid.ts_keyed WHERE v = 'bc';
  DELETE FROM fid.custom WHERE id IN (4, 2003, 3005);
  ${insertMatrix('fid.custom', ALL_CASES, { rows: [0, 3, 8], idOffset: 900 })}
  UPDATE fid.custom SET mood = 'sad' WHERE id = 901;
  DELETE FROM fid.custom WHERE id IN (901, 904, 909);
  INSERT INTO fid.docs VALUES (500, 'short-lived', 0, ${big("'x'")}, NULL, NULL);
  UPDATE fid.docs SET n = 1 WHERE id = 500;
  DELETE FROM fid.docs WHERE id = 500;
  DELETE FROM outside.secret WHERE id = 2;
  COMMIT;`;

/** The keyless table: one of two (or three) identical rows changes, exactly. */
const KEYLESS = `${PARSE}
  BEGIN;
  UPDATE fid.nokey SET b = 'changed' WHERE ctid = (SELECT ctid FROM fid.nokey WHERE a = 1 LIMIT 1);
  DELETE FROM fid.nokey WHERE ctid = (SELECT ctid FROM fid.nokey WHERE a = 2 LIMIT 1);
  UPDATE fid.nokey SET h = 42 WHERE a = 2;
  UPDATE fid.nokey SET d = 'NaN' WHERE ctid = (SELECT ctid FROM fid.nokey WHERE a = 3 LIMIT 1);
  DELETE FROM fid.nokey WHERE ctid = (SELECT ctid FROM fid.nokey WHERE a IS NULL LIMIT 1);
  COMMIT;`;

/** TRUNCATE (of a flow table and one outside it, in one statement), then new rows. */
const TRUNCATE = `${PARSE}
  BEGIN;
  TRUNCATE fid.float_keyed, outside.secret;
  INSERT INTO fid.float_keyed VALUES ('NaN', 'nan again'), ('-0', 'minus zero'), ('1e-310', 'subnormal again'),
    ('0.30000000000000004', 'new'), ('-Infinity', 'back');
  INSERT INTO outside.secret VALUES (7, 'after truncate');
  COMMIT;
  INSERT INTO fid.float_keyed VALUES ('5e-324', 'after');`;

const TABLES: { table: string; key: string }[] = [
  ...MATRIX.map(({ table }) => ({ table, key: 'id' })),
  ...TWINS.map(({ table }) => ({ table, key: 'id' })),
  ...KEYED_TABLES.map(({ table, key }) => ({ table, key })),
  { table: 'fid.docs', key: 'id' },
];

const pair = usePgPair();

describe('CDC fidelity', () => {
  let urls: { sourceUrl: string; targetUrl: string };
  let cfg: string;
  let src: pg.Client;
  let dst: pg.Client;
  let verify: { code: number | null; stdout: string; stderr: string };

  beforeAll(async () => {
    urls = await freshDatabases(pair(), 'cfid');
    const odd = oddSettings('cfid_src', 'cfid_dst');
    await query(urls.sourceUrl, odd.source);
    await query(urls.targetUrl, odd.target);
    await query(urls.sourceUrl, SCHEMA);
    cfg = writeConfig({
      name: 'cfid',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['fid.*', 'Sales Dept.*'],
      mode: 'snapshot+cdc',
      rowsPerRange: 4,
      batchRows: 3,
      workers: 2,
      cdc: { batchMs: 200, heartbeatSeconds: 1 },
    });
    const run = startFerry(['run', cfg]);
    const runEnded = run.exited.then((r) => {
      throw new Error(`ferry run ended early (${r.code}): ${r.stderr}`);
    });
    runEnded.catch(() => {});
    const streaming = () => waitForPhase(cfg, 'streaming', 60_000);
    await Promise.race([streaming(), runEnded]);

    await query(urls.sourceUrl, INSERTS_1);
    await query(urls.sourceUrl, INSERTS_2);
    await query(urls.sourceUrl, BULK);
    // Let the target catch up, so that the updates below apply in later target transactions than the inserts.
    const count = `SELECT (SELECT count(*) FROM fid.text_keyed) || '/' || (SELECT count(*) FROM fid.custom) AS n`;
    const [want] = await query(urls.sourceUrl, count);
    await Promise.race([waitFor('the large transaction on the target', async () => (await query(urls.targetUrl, count))[0]!.n === want!.n, 60_000), runEnded]);
    await query(urls.sourceUrl, UPDATES);
    await query(urls.sourceUrl, KEY_MOVES);
    await query(urls.sourceUrl, DELETES);
    await query(urls.sourceUrl, KEYLESS);
    await query(urls.sourceUrl, TRUNCATE);

    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    verify = await ferry(['verify', cfg]);
    [src, dst] = await Promise.all([compareClient(urls.sourceUrl), compareClient(urls.targetUrl)]);
  });
  afterAll(async () => {
    await Promise.allSettled([src?.end(), dst?.end()]);
  });

  it('ferry verify agrees', () => {
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toContain('verify: source and target are identical');
  });

  it('exercised what it meant to: out-of-line TOAST values, a large transaction, moved and deleted rows', async () => {
    const { rows } = await src.query<Record<string, string>>(`
      SELECT (SELECT count(*) FROM fid.docs WHERE pg_column_toast_chunk_id(body) IS NOT NULL
                AND pg_column_toast_chunk_id(blob) IS NOT NULL AND pg_column_toast_chunk_id(doc) IS NOT NULL)::text AS docs,
             (SELECT pg_column_toast_chunk_id(txt) IS NOT NULL FROM fid.builtin WHERE id = ${BIG_TEXT_ID})::text AS builtin_txt,
             (SELECT pg_column_toast_chunk_id(txt) IS NOT NULL FROM fid.custom WHERE id = ${500 + BIG_TEXT_ID})::text AS moved_txt,
             (SELECT pg_column_toast_chunk_id(ba) IS NOT NULL FROM fid.custom WHERE id = ${BIG_BYTEA_ID})::text AS custom_ba,
             (SELECT count(*) FROM fid.text_keyed WHERE k LIKE 'bulk%')::text AS bulk,
             (SELECT count(*) FROM fid.builtin WHERE id > 1000)::text AS copies,
             (SELECT count(*) FROM fid.builtin WHERE id <= ${MATRIX_ROWS})::text AS matrix,
             (SELECT count(*) FROM fid.float_keyed)::text AS floats,
             (SELECT count(*) FROM outside.secret)::text AS secret`);
    expect(rows[0]).toEqual({
      docs: '18', // 20, less 11 and 1007 (deleted); moved rows keep their out-of-line values
      builtin_txt: 'true',
      moved_txt: 'true',
      custom_ba: 'true',
      bulk: String(BULK_TEXT_KEYS - Math.floor(BULK_TEXT_KEYS / 7)),
      copies: String(BULK_COPIES * (MATRIX_ROWS - 2)),
      matrix: String(MATRIX_ROWS - 1),
      floats: '6',
      secret: '1',
    });
  });

  it.each(TABLES)('$table: every row identical (md5 of row text by key)', async ({ table, key }) => {
    const [a, b] = await Promise.all([dump(src, table, key), dump(dst, table, key)]);
    expect(a.size, `source ${table}`).toBeGreaterThan(0);
    const diffs = [...a]
      .filter(([k, v]) => b.get(k)?.h !== v.h)
      .map(([k, v]) => `key ${k}:\n  source ${short(v.text)}\n  target ${short(b.get(k)?.text)}`);
    const extra = [...b.keys()].filter((k) => !a.has(k)).map((k) => `key ${k} only on the target: ${short(b.get(k)?.text)}`);
    expect([...diffs, ...extra], [...diffs, ...extra].slice(0, 20).join('\n')).toEqual([]);
    expect(new Map([...b].map(([k, v]) => [k, v.h]))).toEqual(new Map([...a].map(([k, v]) => [k, v.h])));
  });

  it('fid.nokey (no key, REPLICA IDENTITY FULL): the same multiset of rows; exactly one of identical rows changed', async () => {
    const multiset = async (c: pg.Client) =>
      new Map(
        (await c.query<{ h: string; n: string; t: string }>(`SELECT md5(t::text) AS h, count(*)::text AS n, min(left(t::text, 200)) AS t FROM fid.nokey t GROUP BY 1`)).rows.map(
          (r) => [r.h, `${r.n} × ${r.t}`],
        ),
      );
    const [a, b] = await Promise.all([multiset(src), multiset(dst)]);
    expect(b).toEqual(a);
    const shape = `SELECT coalesce(a::text, 'null') || ':' || coalesce(b, 'null') || ':' || coalesce(d::text, 'null') || ':' || coalesce(h::text, 'null') AS r,
                          count(*)::text AS n FROM fid.nokey GROUP BY 1 ORDER BY 1`;
    expect((await dst.query(shape)).rows).toEqual([
      { r: '1:changed:0.1:0.000000000000000000000000000001', n: '1' },
      { r: '1:dup:0.1:0.000000000000000000000000000001', n: '1' },
      { r: '2:pair:-0:42', n: '1' },
      { r: '3:tab\there:1e-310:0.000', n: '2' },
      { r: '3:tab\there:NaN:0.000', n: '1' },
      { r: 'null:null:null:null', n: '1' },
    ]);
  });

  it('keeps json byte for byte, through inserts, updates and bulk copies', async () => {
    for (const { table } of [...MATRIX, ...TWINS]) {
      const q = `SELECT id::text AS id, j::text AS j FROM ${table} WHERE j IS NOT NULL`;
      const [a, b] = await Promise.all([src.query<{ id: string; j: string }>(q), dst.query<{ id: string; j: string }>(q)]);
      const map = (rows: { id: string; j: string }[]) => new Map(rows.map((r) => [r.id, r.j]));
      expect(map(b.rows), table).toEqual(map(a.rows));
      const texts = new Set(b.rows.map((r) => r.j));
      for (const j of JSON_TEXTS) expect(texts.has(j), `${table}: ${j}`).toBe(true);
    }
  });

  it('keeps TOAST values that updates left alone, including in moved rows', async () => {
    const q = `SELECT (SELECT count(*) FROM fid.docs WHERE body IS NULL OR blob IS NULL OR doc IS NULL)::text AS docs,
                      (SELECT octet_length(txt)::text FROM fid.builtin WHERE id = ${BIG_TEXT_ID}) AS builtin_txt,
                      (SELECT octet_length(txt)::text FROM fid.custom WHERE id = ${500 + BIG_TEXT_ID}) AS moved_txt,
                      (SELECT octet_length(ba)::text FROM fid.custom WHERE id = ${BIG_BYTEA_ID}) AS custom_ba`;
    const [a, b] = await Promise.all([src.query(q), dst.query(q)]);
    expect(a.rows[0]).toEqual({ docs: '0', builtin_txt: expect.any(String), moved_txt: expect.any(String), custom_ba: '12000' });
    expect(b.rows[0]).toEqual(a.rows[0]);
  });

  it('never lets a table outside the flow reach the target', async () => {
    const { rows } = await dst.query(`SELECT to_regclass('outside.secret')::text AS t, to_regnamespace('outside')::text AS s`);
    expect(rows[0]).toEqual({ t: null, s: null });
  });

  it('writes the same bytes by snapshot and by stream: a copied row and a streamed twin hash the same but for the key', async () => {
    for (const { table, cases } of TWINS) {
      const rowText = `ROW(${cases.map((c) => c.col).join(', ')})::text`;
      const { rows } = await dst.query<{ id: string; h: string; t: string }>(
        `SELECT id::text AS id, md5(${rowText}) AS h, ${rowText} AS t FROM ${table} ORDER BY id`,
      );
      const snap = rows.filter((r) => Number(r.id) <= MATRIX_ROWS);
      const streamed = new Map(rows.filter((r) => Number(r.id) > 1000).map((r) => [Number(r.id) - 1000, r]));
      expect(snap.length, table).toBe(MATRIX_ROWS);
      expect(streamed.size, table).toBe(MATRIX_ROWS);
      for (const r of snap) {
        const twin = streamed.get(Number(r.id));
        expect(twin?.h, `${table} id ${r.id}:\n  snapshot ${short(r.t)}\n  stream   ${short(twin?.t)}`).toBe(r.h);
      }
      // And both are the source's bytes.
      const [a, b] = await Promise.all([dump(src, table, 'id'), dump(dst, table, 'id')]);
      expect(new Map([...b].map(([k, v]) => [k, v.h]))).toEqual(new Map([...a].map(([k, v]) => [k, v.h])));
    }
  });
});
