/**
 * Binary COPY for the user-defined types whose binary form names no OID: enums (sent as labels) and domains over
 * built-in types or enums. Arrays of them and composites stay in text COPY. Each table copied exactly.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chooseFormat, PG_COPY_BINARY, PG_COPY_TEXT } from '../src/adapters/postgres/copy-format.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../src/config/load.js';
import { tableKey } from '../src/core/model.js';
import { silentProgress } from '../src/core/progress.js';
import { compareTables } from '../src/demo/compare.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

const SCHEMA = `
  CREATE SCHEMA app;
  -- Type OIDs differ between the two clusters: the binary form must not depend on them.
  CREATE TYPE app.filler AS ENUM ('x');
  CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"', 'ünï cødé');
  CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
  CREATE DOMAIN app.goodmood AS app.mood CHECK (VALUE <> 'sad');
  CREATE DOMAIN app.ints AS int[];
  CREATE TYPE app.pair AS (a int, b text);
  CREATE TABLE app.enums (id int PRIMARY KEY, m app.mood, p app.posint, g app.goodmood, xs app.ints, t text);
  CREATE TABLE app.arrays (id int PRIMARY KEY, ms app.mood[]);
  CREATE TABLE app.composites (id int PRIMARY KEY, c app.pair);
  INSERT INTO app.enums SELECT g, (enum_range(NULL::app.mood))[1 + g % 5], g, (enum_range(NULL::app.mood))[2 + g % 4],
    ARRAY[g, -g], CASE WHEN g % 7 = 0 THEN NULL ELSE 'r' || g END FROM generate_series(1, 3000) g;
  INSERT INTO app.arrays SELECT g, ARRAY[(enum_range(NULL::app.mood))[1 + g % 5], 'ok'] FROM generate_series(1, 500) g;
  INSERT INTO app.composites SELECT g, ROW(g, 'b' || g)::app.pair FROM generate_series(1, 500) g;
  ANALYZE;
`;

describe('snapshot COPY format', () => {
  it('copies enum and domain columns in binary COPY, enum arrays and composites in text COPY, all exactly', async () => {
    const urls = await freshDatabases(pair(), 'binenum');
    await query(urls.sourceUrl, SCHEMA);
    const config = parseConfig({
      name: 'binenum',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['app.*'],
      rowsPerRange: 1000,
      batchRows: 400,
      workers: 2,
      state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-state-')), 'state.db') },
    });
    await runFlow({ config, progress: silentProgress });
    const store = new SqliteStateStore(config.state.path);
    const flow = await store.getFlow('binenum');
    await store.close();
    const formats = Object.fromEntries(flow!.tables.map((t) => [tableKey(t.source), chooseFormat(t, [PG_COPY_BINARY, PG_COPY_TEXT])]));
    expect(formats).toEqual({ 'app.enums': PG_COPY_BINARY, 'app.arrays': PG_COPY_TEXT, 'app.composites': PG_COPY_TEXT });
    const diffs = await compareTables(urls.sourceUrl, urls.targetUrl, 'app');
    expect(diffs).toHaveLength(3);
    for (const d of diffs) expect(d, d.table).toMatchObject({ ok: true });
    const [r] = await query(urls.targetUrl, `SELECT count(*) FILTER (WHERE m = 'it''s "fine"') q, count(*) FILTER (WHERE m = 'ünï cødé') u FROM app.enums`);
    expect(r).toEqual({ q: '600', u: '600' });
  });
});
