/**
 * Major-version upgrades: a PostgreSQL 15 source (Debian's postgresql-15) into the embedded 18 target. The snapshot
 * fidelity matrix (every awkward type and value, by md5 of each row's text keyed by primary key), and the
 * application schema in snapshot+cdc: changes streamed after the snapshot, then cutover, then the catalog
 * comparison and the data checksums. Skipped where postgresql-15 is not installed (.ci/run installs it).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { silentProgress } from '../src/core/progress.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { runFlow } from '../src/runtime/local/run-flow.js';
import { APP_DATA, APP_ROLES, APP_SCHEMA } from './support/app-schema.js';
import { ferry, killAll, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';
import {
  BUILTIN_CASES,
  compareClient,
  createMatrix,
  CUSTOM_CASES,
  dump,
  insertMatrix,
  KEYED_TABLES,
  MATRIX_ROWS,
  MATRIX_TYPES,
  short,
} from './support/fidelity-matrix.js';
import { query } from './support/pg-pair.js';
import { pg15Available, startPg15 } from './support/pg15.js';
import { catalogLines, crossVersion, dataChecksums, diffReport } from './support/schema-compare.js';

let source: Cluster;
let target: Cluster;

beforeAll(async () => {
  if (!pg15Available()) return;
  [source, target] = await Promise.all([startPg15(), startCluster()]);
}, 120_000);
afterAll(async () => {
  killAll();
  await Promise.allSettled([source?.stop(), target?.stop()]);
});

const MATRIX = `
  SET DateStyle = ISO; SET IntervalStyle = postgres;
  ${MATRIX_TYPES}
  ${createMatrix('fid.builtin', BUILTIN_CASES)}
  ${insertMatrix('fid.builtin', BUILTIN_CASES)}
  ${createMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}
  ${insertMatrix('fid.custom', [...BUILTIN_CASES, ...CUSTOM_CASES])}
  ${KEYED_TABLES.map((t) => `${t.ddl}\n  ${t.fill}`).join('\n\n  ')}
  ANALYZE;
`;

describe.skipIf(!pg15Available())('PostgreSQL 15 -> 18', () => {
  it('snapshot: the fidelity matrix arrives identical, row by row', async () => {
    await Promise.all([source.createDatabase('fid15'), target.createDatabase('fid18')]);
    const [sourceUrl, targetUrl] = [source.urlFor('fid15'), target.urlFor('fid18')];
    await query(sourceUrl, MATRIX);
    const config = parseConfig({
      name: 'fid15',
      source: { url: sourceUrl },
      target: { url: targetUrl },
      include: ['fid.*', 'Sales Dept.*'],
      rowsPerRange: 4,
      batchRows: 3,
      workers: 3,
      state: { path: join(mkdtempSync(join(tmpdir(), 'ferry-fid15-')), 'state.db') },
    });
    expect((await runFlow({ config, progress: silentProgress })).interrupted).toBe(false);
    const [src, dst] = (await Promise.all([compareClient(sourceUrl), compareClient(targetUrl)])) as [pg.Client, pg.Client];
    try {
      const tables = [
        { table: 'fid.builtin', key: 'id', rows: MATRIX_ROWS },
        { table: 'fid.custom', key: 'id', rows: MATRIX_ROWS },
        ...KEYED_TABLES.map(({ table, key, rows }) => ({ table, key, rows })),
      ];
      for (const { table, key, rows } of tables) {
        const [a, b] = await Promise.all([dump(src, table, key), dump(dst, table, key)]);
        expect(a.size, `source ${table}`).toBe(rows);
        expect(b.size, `target ${table}`).toBe(rows);
        const diffs = [...a].filter(([k, v]) => b.get(k)?.h !== v.h).map(([k, v]) => `${table} key ${k}:\n  source ${short(v.text)}\n  target ${short(b.get(k)?.text)}`);
        expect(diffs, diffs.join('\n')).toEqual([]);
      }
    } finally {
      await Promise.allSettled([src.end(), dst.end()]);
    }
  }, 240_000);

  it('snapshot+cdc: the application schema, with changes streamed until cutover, arrives equal', async () => {
    await Promise.all([source.createDatabase('app15'), target.createDatabase('app18')]);
    const [sourceUrl, targetUrl] = [source.urlFor('app15'), target.urlFor('app18')];
    await query(sourceUrl, APP_SCHEMA);
    // An UNLOGGED table cannot be published (its changes are not in the WAL): streaming one is the CDC side's issue.
    await query(sourceUrl, `ALTER TABLE app.sessions SET LOGGED`);
    const cfg = writeConfig({ name: 'app15', source: { url: sourceUrl }, target: { url: targetUrl }, mode: 'snapshot+cdc', workers: 2 });
    const run = startFerry(['run', cfg]);
    await waitForPhase(cfg, 'streaming', 120_000, run);
    // Tables with triggers too: the source's triggers fire once (their effects, audit rows and updated_at, stream
    // as changes); the target's, created by finalize, must not fire again on replayed changes (replica role).
    await query(sourceUrl, `
      INSERT INTO app.orders (customer_id, status, total) SELECT 1 + i % 50, 'paid', i FROM generate_series(1, 30) i;
      UPDATE app.orders SET status = 'shipped' WHERE id % 11 = 0;
      UPDATE app.customers SET code = 'X-' || id WHERE id < 6;
      REFRESH MATERIALIZED VIEW app.status_counts;
      INSERT INTO app.rooms SELECT i, i % 7, tstzrange(now() + i * interval '1 day', now() + i * interval '1 day' + interval '1 hour') FROM generate_series(100, 120) i;
      UPDATE app.rooms SET room = room + 10 WHERE id < 10;
      DELETE FROM app.rooms WHERE id BETWEEN 20 AND 25;
      INSERT INTO app.events (at, payload) SELECT timestamptz '2024-06-01' + i * interval '1 day', jsonb_build_object('late', i) FROM generate_series(1, 20) i;
      UPDATE app.events SET payload = payload || '{"seen": true}' WHERE id % 9 = 0;
      INSERT INTO app.vehicles VALUES (10, 'scooter');
      UPDATE app.vehicles SET name = 'bicycle' WHERE id = 1;
      INSERT INTO app.trucks VALUES (11, 'tipper', 7);
      DELETE FROM app.trucks WHERE id = 4;
      UPDATE app.sessions SET seen = now() WHERE customer_id < 5;
      INSERT INTO public.notes (body) SELECT 'late ' || i FROM generate_series(1, 10) i;`);
    const stop = await ferry(['stop', cfg]);
    expect(stop.code, stop.stderr).toBe(0);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    const [s, t] = await Promise.all([catalogLines(sourceUrl, APP_ROLES), catalogLines(targetUrl, APP_ROLES)]);
    expect(diffReport(crossVersion(s), crossVersion(t))).toBe('0 differing lines');
    expect(await dataChecksums(targetUrl, APP_DATA)).toEqual(await dataChecksums(sourceUrl, APP_DATA));
    const verify = await ferry(['verify', cfg]);
    expect(verify.stdout + verify.stderr).toContain('verify: source and target are identical');
    await ferry(['cleanup', cfg]);
  }, 300_000);
});
