import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSampleSchema, SAMPLE_TABLES, type SampleSchemaResult } from '../src/demo/sample-schema.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';

describe('createSampleSchema', () => {
  let cluster: Cluster;
  let client: pg.Client;
  let result: SampleSchemaResult;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('sample');
    client = new pg.Client({ connectionString: cluster.urlFor('sample') });
    await client.connect();
    result = await createSampleSchema(client, { scale: 0.01 });
  });

  afterAll(async () => {
    await client?.end().catch(() => {});
    await cluster?.stop();
  });

  const one = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T> => {
    const r = await client.query<T>(sql, params);
    expect(r.rows).toHaveLength(1);
    return r.rows[0]!;
  };

  it('creates every listed table as an ordinary table in schema shop', async () => {
    expect(result.tables.map((t) => t.name)).toEqual(SAMPLE_TABLES.map((t) => t.name));
    expect(result.tables.length).toBeGreaterThanOrEqual(5);
    const r = await client.query<{ relname: string; relkind: string }>(
      `SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'shop' AND c.relkind IN ('r', 'p') ORDER BY 1`,
    );
    expect(r.rows.map((x) => x.relname).sort()).toEqual(SAMPLE_TABLES.map((t) => t.name).sort());
    expect(r.rows.every((x) => x.relkind === 'r')).toBe(true);
  });

  it('fills row counts proportional to the scale', () => {
    expect(result.rows).toEqual({
      'shop.customers': 1000,
      'shop.products': 200,
      'shop.orders': 2500,
      // 1 to 3 lines per order (id % 3 + 1): 834 * 2 + 833 * 3 + 833 * 1.
      'shop.Order Items': 5000,
      'shop.events': 1300,
      'shop.documents': 20,
    });
  });

  it('has the key shapes a migrator must handle: single, composite and no primary key', async () => {
    const pk = async (table: string) =>
      (
        await client.query<{ cols: string[] }>(
          `SELECT array_agg(a.attname::text ORDER BY k.ord) AS cols
           FROM pg_constraint c
           CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
           WHERE c.contype = 'p' AND c.conrelid = $1::regclass GROUP BY c.oid`,
          [table],
        )
      ).rows[0]?.cols;
    expect(await pk('shop.customers')).toEqual(['id']);
    expect(await pk('shop.products')).toEqual(['id']);
    expect(await pk('shop."Order Items"')).toEqual(['order_id', 'line_no']);
    expect(await pk('shop.events')).toBeUndefined();
    // Without a key, duplicates are legal and must survive a copy.
    const dup = await one<{ n: number }>(
      `SELECT (SELECT count(*) FROM shop.events) - (SELECT count(*) FROM (SELECT DISTINCT * FROM shop.events) d) AS n`,
    );
    expect(Number(dup.n)).toBeGreaterThan(0);
  });

  it('stores some document bodies out of line in TOAST', async () => {
    const r = await one<{ max: number; toast: string }>(
      `SELECT (SELECT max(octet_length(body)) FROM shop.documents) AS max,
              pg_relation_size(reltoastrelid)::text AS toast
       FROM pg_class WHERE oid = 'shop.documents'::regclass`,
    );
    expect(r.max).toBeGreaterThan(8192);
    expect(Number(r.toast)).toBeGreaterThan(100_000);
  });

  it('uses identity, enum, domain, array, uuid and a reserved-word column', async () => {
    const cols = await client.query<{ rel: string; col: string; type: string; identity: string }>(
      `SELECT c.relname AS rel, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type, a.attidentity AS identity
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'shop' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped`,
    );
    const type = (rel: string, col: string) => cols.rows.find((x) => x.rel === rel && x.col === col);
    expect(type('customers', 'id')).toMatchObject({ type: 'bigint', identity: 'a' });
    expect(type('customers', 'tier')?.type).toBe('shop.tier');
    expect(type('customers', 'prefs')?.type).toBe('jsonb');
    expect(type('products', 'id')?.type).toBe('uuid');
    expect(type('products', 'price')?.type).toBe('numeric(12,2)');
    expect(type('products', 'tags')?.type).toBe('text[]');
    expect(type('products', 'thumbnail')?.type).toBe('bytea');
    expect(type('orders', 'status')?.type).toBe('shop.order_status');
    expect(type('orders', 'delivery_window')?.type).toBe('interval');
    expect(type('Order Items', 'quantity')?.type).toBe('shop.positive_qty');
    expect(type('Order Items', 'select')?.type).toBe('text');
    expect(type('events', 'occurred_at')?.type).toBe('timestamp without time zone');
    expect(type('events', 'source_ip')?.type).toBe('inet');
  });

  it('has foreign keys, secondary indexes and statistics', async () => {
    const fks = await one<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_constraint WHERE contype = 'f' AND connamespace = 'shop'::regnamespace`,
    );
    expect(Number(fks.n)).toBe(3);
    const idx = await one<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_indexes WHERE schemaname = 'shop' AND indexname NOT LIKE '%_pkey'`,
    );
    expect(Number(idx.n)).toBeGreaterThanOrEqual(6);
    const est = await one<{ reltuples: number }>(`SELECT reltuples FROM pg_class WHERE oid = 'shop.customers'::regclass`);
    expect(est.reltuples).toBe(1000);
  });

  it('keeps awkward text intact', async () => {
    const r = await one<{ name: string }>(`SELECT name FROM shop.customers WHERE id = 97`);
    expect(r.name).toBe('O\'Brien\t"Zoë"\n\\ 東京 97');
  });

  it('can be rebuilt in place', async () => {
    const again = await createSampleSchema(client, { scale: 0.01 });
    expect(again.rows).toEqual(result.rows);
  });
});
