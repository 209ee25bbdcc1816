/**
 * The PostgreSQL side of the port contract suites: the contract tables as `contract.<name> (id int, v text)`,
 * `pg-text` row images, `pg-copy-text` row streams, and one harness factory per port over a source/target pair of
 * embedded clusters (test/support/pg-pair.ts).
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import { PgChangeSource } from '../../src/adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../../src/adapters/postgres/cdc/change-target.js';
import { rawTypes } from '../../src/adapters/postgres/connect.js';
import { copiedColumns, PG_COPY_TEXT } from '../../src/adapters/postgres/copy-format.js';
import { PgSnapshotSource } from '../../src/adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../src/adapters/postgres/snapshot-target.js';
import { literal, qualified } from '../../src/adapters/postgres/sql.js';
import type { EndpointConfig } from '../../src/config/schema.js';
import { tableKey, type TableSchema } from '../../src/core/model.js';
import type { RowImage } from '../../src/core/ports/change-source.js';
import type { RowStream } from '../../src/core/ports/source.js';
import type { PgPair } from '../support/pg-pair.js';
import type { ChangeSourceHarness } from './change-source.contract.js';
import type { ChangeTargetHarness } from './change-target.contract.js';
import type { ChecksumsHarness } from './checksums.contract.js';
import type { EngineFixture, Row, RowImages, RowStreamCodecForTests, Write } from './fixture.js';
import type { SnapshotSourceHarness } from './snapshot-source.contract.js';
import type { SnapshotTargetHarness } from './snapshot-target.contract.js';

const SCHEMA = 'contract';
const rel = (name: string) => qualified({ schema: SCHEMA, name });
const lit = (v: string | null) => (v === null ? 'NULL' : literal(v));
const endpoint = (url: string) => ({ url }) as EndpointConfig;

/**
 * One small pool per database for the oracle's own statements (a connection per statement costs more than the
 * statement on a loaded machine). Idle connections let the process exit, and a server stopped under them is fine.
 */
const pools = new Map<string, pg.Pool>();
async function run(url: string, sql: string): Promise<pg.QueryResultRow[]> {
  let pool = pools.get(url);
  if (!pool) {
    pool = new pg.Pool({ connectionString: url, types: rawTypes, max: 2, idleTimeoutMillis: 2000, allowExitOnIdle: true });
    pool.on('error', () => {});
    pools.set(url, pool);
  }
  const r = await pool.query(sql);
  return (Array.isArray(r) ? (r[r.length - 1] as pg.QueryResult) : r).rows;
}

async function rowsOf(url: string, relation: string): Promise<Row[]> {
  const rows = await run(url, `SELECT t.id::text AS id, t.v FROM ${relation} t ORDER BY t.id`);
  return rows.map((r) => ({ id: Number(r.id), v: r.v as string | null }));
}

function insertSql(relation: string, rows: Row[]): string {
  return rows.length === 0 ? '' : `INSERT INTO ${relation} (id, v) VALUES ${rows.map((r) => `(${r.id}, ${lit(r.v)})`).join(', ')};`;
}

export const pgImages: RowImages = {
  image: (r) => ({ id: String(r.id), v: r.v }),
  key: (id) => ({ id: String(id) }),
  decode: (img: RowImage) => ({
    ...('id' in img ? { id: Number(img.id) } : {}),
    ...('v' in img ? { v: img.v ?? null } : {}),
  }),
};

/** The contract tables of one PostgreSQL database. */
export function pgFixture(url: string): EngineFixture {
  return {
    ...pgImages,
    async create(name, rows, opts = {}) {
      const key = opts.sequence ? 'id serial PRIMARY KEY' : opts.keyless ? 'id int' : 'id int PRIMARY KEY';
      await run(
        url,
        `CREATE SCHEMA IF NOT EXISTS ${SCHEMA}; DROP TABLE IF EXISTS ${rel(name)};
         CREATE TABLE ${rel(name)} (${key}, v text);
         ${opts.keyless ? `ALTER TABLE ${rel(name)} REPLICA IDENTITY FULL;` : ''}
         ${insertSql(rel(name), rows)}
         ${opts.sequence && rows.length ? `SELECT setval(pg_get_serial_sequence('${SCHEMA}.${name}', 'id'), ${Math.max(...rows.map((r) => r.id))});` : ''}
         ANALYZE ${rel(name)};`,
      );
    },
    async write(writes: Write[]) {
      const sql = writes.map((w) => {
        switch (w.op) {
          case 'insert':
            return insertSql(rel(w.table), w.rows);
          case 'update':
            return `UPDATE ${rel(w.table)} SET v = ${lit(w.v)} WHERE id IN (${w.ids.join(', ')});`;
          case 'delete':
            return `DELETE FROM ${rel(w.table)} WHERE id IN (${w.ids.join(', ')});`;
          case 'truncate':
            return `TRUNCATE ${rel(w.table)};`;
        }
      });
      await run(url, `BEGIN; ${sql.join(' ')} COMMIT;`);
    },
    rows: (name) => rowsOf(url, rel(name)),
    selection: (names) => ({ include: names.map((n) => `${SCHEMA}.${n}`), exclude: [], rename: {} }),
    tableKey: (name) => `${SCHEMA}.${name}`,
  };
}

/** COPY text format: tab-separated, `\N` for null, backslash escapes. */
const unescape = (s: string) => s.replace(/\\(.)/g, (_m, c: string) => ({ t: '\t', n: '\n', r: '\r', b: '\b', f: '\f', v: '\v' })[c] ?? c);
const escape = (s: string) => s.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);

export const pgStreams: RowStreamCodecForTests = {
  formats: [PG_COPY_TEXT],
  async decodeStream(table: TableSchema, rows: RowStream): Promise<Row[]> {
    if (rows.format !== PG_COPY_TEXT) throw new Error(`cannot decode ${rows.format}`);
    const cols = copiedColumns(table);
    const [iid, iv] = [cols.indexOf('id'), cols.indexOf('v')];
    let text = '';
    for await (const chunk of rows.stream) text += String(chunk);
    return text
      .split('\n')
      .filter((l) => l.length > 0)
      .map((line) => {
        const f = line.split('\t');
        return { id: Number(f[iid]), v: f[iv] === '\\N' ? null : unescape(f[iv]!) };
      });
  },
  encodeStream(table: TableSchema, rows: Row[], format: string): RowStream {
    if (format !== PG_COPY_TEXT) throw new Error(`cannot encode ${format}`);
    const cols = copiedColumns(table);
    const line = (r: Row) => `${cols.map((c) => (c === 'id' ? String(r.id) : r.v === null ? '\\N' : escape(r.v))).join('\t')}\n`;
    return { format, stream: Readable.from(rows.map(line)) };
  },
};

/** Close everything, in any state, never throwing. */
async function closeAll(...items: { close(): Promise<void> }[]): Promise<void> {
  await Promise.allSettled(items.map((i) => i.close()));
}

export function pgSnapshotSourceHarness(pair: PgPair): () => Promise<SnapshotSourceHarness> {
  return async () => {
    const source = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 2 });
    const extra: PgSnapshotSource[] = [];
    return {
      source,
      reopen: async () => {
        const s = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 2 });
        extra.push(s);
        return s;
      },
      fixture: pgFixture(pair.sourceUrl),
      streams: pgStreams,
      cleanup: () => closeAll(source, ...extra),
    };
  };
}

async function targetInsert(url: string, table: TableSchema, rows: Row[]): Promise<void> {
  if (rows.length) await run(url, insertSql(qualified(table.target), rows));
}

export function pgSnapshotTargetHarness(pair: PgPair): () => Promise<SnapshotTargetHarness> {
  return async () => {
    const source = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 2 });
    const target = new PgSnapshotTarget(endpoint(pair.targetUrl), { connections: 3 });
    return {
      source,
      target,
      sourceFixture: pgFixture(pair.sourceUrl),
      targetRows: (t) => rowsOf(pair.targetUrl, qualified(t.target)),
      targetInsert: (t, rows) => targetInsert(pair.targetUrl, t, rows),
      cleanup: () => closeAll(source, target),
    };
  };
}

export function pgChecksumsHarness(pair: PgPair): () => Promise<ChecksumsHarness> {
  return async () => {
    const a = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 2 });
    const b = new PgSnapshotTarget(endpoint(pair.targetUrl), { connections: 2 });
    const fixtureA = pgFixture(pair.sourceUrl);
    const described = async (name: string) => (await a.describe(fixtureA.selection([name])))[0]!;
    return {
      a,
      b,
      planner: a,
      fixtureA,
      loadA: async (name, rows) => {
        await fixtureA.create(name, rows);
        return described(name);
      },
      // The side-B table has side A's shape (loadA runs first), its rows loaded in the order given.
      loadB: async (name, rows) => {
        const t = await described(name);
        await b.createTables('ck', [t]);
        await run(pair.targetUrl, `TRUNCATE ${qualified(t.target)}`);
        await targetInsert(pair.targetUrl, t, rows);
        return t;
      },
      cleanup: () => closeAll(a, b),
    };
  };
}

export function pgChangeSourceHarness(pair: PgPair): () => Promise<ChangeSourceHarness> {
  return async () => {
    const snapshot = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 2 });
    return {
      open: async () => new PgChangeSource(endpoint(pair.sourceUrl), { heartbeatMs: 500 }),
      fixture: pgFixture(pair.sourceUrl),
      snapshot,
      streams: pgStreams,
      cleanup: () => closeAll(snapshot),
    };
  };
}

export function pgChangeTargetHarness(pair: PgPair): () => Promise<ChangeTargetHarness> {
  return async () => {
    const source = new PgSnapshotSource(endpoint(pair.sourceUrl), { connections: 1 });
    const schema = new PgSnapshotTarget(endpoint(pair.targetUrl), { connections: 1 });
    const fixture = pgFixture(pair.sourceUrl);
    return {
      open: async () => new PgChangeTarget(endpoint(pair.targetUrl), { connections: 3 }),
      async table(name, rows, opts) {
        await fixture.create(name, [], opts);
        const [t] = await source.describe(fixture.selection([name]));
        await schema.createTables('ct', [t!]);
        // A change target applies into finalized tables: the keys the snapshot defers exist by then.
        await schema.finalize('ct', [t!], []);
        await targetInsert(pair.targetUrl, t!, rows);
        return t!;
      },
      images: pgImages,
      key: (t) => tableKey(t.source),
      targetRows: (t) => rowsOf(pair.targetUrl, qualified(t.target)),
      position: (n) => `0/${(0x1000000 + n * 0x100).toString(16).toUpperCase()}`,
      cleanup: () => closeAll(source, schema),
    };
  };
}

