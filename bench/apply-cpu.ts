/**
 * CPU per change of the apply path alone (PgChangeTarget.apply → the target backend), for the changes of
 * bench:cdc's scenarios (a) one transaction of inserts and (c) a mixed burst (2 inserts, 2 updates of seeded rows, 1
 * delete a transaction), without the source, the decoder or the stream machine. It measures CPU time, not wall time:
 * this process's (process.cpuUsage) and the target backend's (/proc/<pid>/stat of the batch's connection), so the
 * figures hold on a loaded machine. Two trees alternate in one run, to compare a change with its baseline:
 *
 *   node --import tsx bench/apply-cpu.ts [<baseline tree>]            e.g. /tmp/ferry-main (a `git archive` of main)
 *
 * FERRY_APPLY_ROWS (a) rows (default 100000), FERRY_APPLY_MIXED (c) changes (default 50000), FERRY_APPLY_RUNS (3),
 * FERRY_APPLY_CHUNK changes per apply call (5000, the streamer's default applyChunk).
 */
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import pg from 'pg';
import { startCluster } from '../src/embedded/cluster.js';
import { cpuOf } from './cdc-rig.js';
import type { Change, RowImage } from '../src/core/ports/change-source.js';
import type { TableSchema } from '../src/core/model.js';

const ROWS = Number(process.env.FERRY_APPLY_ROWS ?? 100_000);
const MIXED = Number(process.env.FERRY_APPLY_MIXED ?? 50_000);
const RUNS = Number(process.env.FERRY_APPLY_RUNS ?? 3);
const CHUNK = Number(process.env.FERRY_APPLY_CHUNK ?? 5000);
const trees = [resolve(import.meta.dirname, '..'), ...(process.argv[2] ? [resolve(process.argv[2])] : [])];

const col = (name: string, type: string) => ({ name, type, nullable: true });
const schema = (name: string, columns: ReturnType<typeof col>[]): TableSchema => ({
  source: { schema: 'public', name }, target: { schema: 'public', name }, columns, primaryKey: ['id'], estimatedRows: 0, estimatedBytes: 0, extra: {},
});
const EVENTS = schema('events', [col('id', 'bigint'), col('a', 'integer'), col('t', 'text'), col('n', 'numeric(14,4)'), col('created', 'timestamp with time zone'), col('j', 'jsonb')]);
const MIXED_T = schema('mixed', [col('id', 'bigint'), col('a', 'integer'), col('t', 'text'), col('n', 'numeric(14,4)'), col('u', 'timestamp with time zone')]);
const DDL = `DROP TABLE IF EXISTS events, mixed;
  CREATE TABLE events (id bigint PRIMARY KEY, a int, t text, n numeric(14,4), created timestamptz, j jsonb);
  CREATE TABLE mixed (id bigint PRIMARY KEY, a int, t text, n numeric(14,4), u timestamptz)`;

const md5ish = (g: number) => ((g * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(4);

/** (a): the text forms pgoutput sends for the bench's big transaction. */
function bigTxn(): Change[] {
  const out: Change[] = new Array(ROWS);
  for (let g = 1; g <= ROWS; g++) {
    const row: RowImage = { id: String(g), a: String(g % 1000), t: `row ${g} ${md5ish(g)}`, n: (g / 7).toFixed(4), created: '2026-12-01 15:31:00.123456+00', j: `{"g": ${g}}` };
    out[g - 1] = { op: 'insert', table: 'public.events', row };
  }
  return out;
}

/** (c): transactions of 2 inserts, 2 updates of seeded rows, 1 delete of a seeded row (ids as bench/cdc-workloads.ts). */
function mixedBurst(): { changes: Change[]; seeded: number } {
  const t = Math.ceil(MIXED / 5);
  const p = 4 * t;
  const changes: Change[] = [];
  const row = (id: number, a: number, text: string, n: string, u: string | null): RowImage => ({ id: String(id), a: String(a), t: text, n, u });
  for (let k = 0; k < t; k++) {
    changes.push({ op: 'insert', table: 'public.mixed', row: row(p + 1 + 2 * k, k, `ins ${k} ${md5ish(k)}`, (k / 7).toFixed(4), '2025-01-01 00:00:00+00') });
    changes.push({ op: 'insert', table: 'public.mixed', row: row(p + 2 + 2 * k, k, `ins ${k}`, (k / 3).toFixed(4), null) });
    changes.push({ op: 'update', table: 'public.mixed', row: row(1 + 2 * k, k + 1, `upd ${k}`, (k + 1).toFixed(4), '2025-06-01 00:00:00+00'), old: null });
    changes.push({ op: 'update', table: 'public.mixed', row: row(2 + 2 * k, k + 2, `upd ${k} ${md5ish(k)}`, (k / 11).toFixed(4), null), old: null });
    const del = 2 * t + 1 + k;
    changes.push({ op: 'delete', table: 'public.mixed', old: { id: String(del), a: null, t: null, n: null, u: null } });
  }
  return { changes, seeded: p };
}

interface Sample { tree: string; scenario: string; changes: number; proc: number; backend: number }

async function applyOnce(tree: string, url: string, scenario: 'a' | 'c', changes: Change[], seeded: number): Promise<Sample> {
  const { PgChangeTarget, pgBatch } = (await import(join(tree, 'src/adapters/postgres/cdc/change-target.ts'))) as typeof import('../src/adapters/postgres/cdc/change-target.js');
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query(DDL);
  if (seeded) await admin.query(`INSERT INTO mixed SELECT g, g % 100, 'seed ' || md5(g::text), g / 11.0, '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, ${seeded}) g`);
  await admin.query('VACUUM ANALYZE mixed, events');
  await admin.end();
  const target = new PgChangeTarget({ url }, { connections: 1 });
  try {
    await target.appliedPosition('bench');
    const b = await target.begin('bench', [EVENTS, MIXED_T]);
    const conn = pgBatch(b)!.connection;
    const { rows } = await conn.query<{ p: number }>('SELECT pg_backend_pid() AS p');
    const pid = rows[0]!.p;
    const be0 = cpuOf(pid);
    const p0 = process.cpuUsage();
    for (let i = 0; i < changes.length; i += CHUNK) await b.apply(changes.slice(i, i + CHUNK));
    await b.commit('0/1');
    const p1 = process.cpuUsage(p0);
    const be1 = cpuOf(pid);
    return { tree, scenario, changes: changes.length, proc: (p1.user + p1.system) / 1e6, backend: be1 - be0 };
  } finally {
    await target.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const cluster = await startCluster({});
try {
  const a = bigTxn();
  const c = mixedBurst();
  const samples: Sample[] = [];
  process.stdout.write(`apply-cpu: load average ${loadavg()[0]!.toFixed(1)} at start; (a) ${ROWS} inserts, (c) ${c.changes.length} mixed changes, ${CHUNK} per call, ${RUNS} runs\n`);
  for (let run = 0; run < RUNS; run++) {
    for (const tree of trees) {
      for (const [id, ch, seeded] of [['a', a, 0], ['c', c.changes, c.seeded]] as const) {
        const s = await applyOnce(tree, cluster.url, id, ch, seeded);
        samples.push(s);
        process.stdout.write(`  ${tree} (${id}): process ${(s.proc * 1e6 / s.changes).toFixed(1)} µs/change, target backend ${(s.backend * 1e6 / s.changes).toFixed(1)} µs/change\n`);
      }
    }
  }
  process.stdout.write(`medians (µs per change; load average ${loadavg()[0]!.toFixed(1)} at the end):\n`);
  for (const id of ['a', 'c']) {
    for (const tree of trees) {
      const mine = samples.filter((s) => s.tree === tree && s.scenario === id);
      const proc = median(mine.map((s) => (s.proc * 1e6) / s.changes));
      const be = median(mine.map((s) => (s.backend * 1e6) / s.changes));
      process.stdout.write(`  (${id}) ${tree}: process ${proc.toFixed(1)}, target backend ${be.toFixed(1)}, both ${(proc + be).toFixed(1)}\n`);
    }
  }
} finally {
  await cluster.stop();
}
