/**
 * The demo's source database: schema `shop`, ~1 M rows at scale 1, built entirely server-side with
 * `INSERT ... SELECT generate_series` so it takes seconds, not minutes. The tables are chosen to exercise what a
 * migrator gets wrong: identity columns, uuid/enum/domain/array/bytea/jsonb/inet/interval types, a composite key,
 * quoted identifiers (a space in a table name, a reserved word as a column), a table without a primary key (with
 * duplicate rows), NULLs, awkward text (tabs, newlines, backslashes, quotes, non-ASCII) and TOASTed values.
 * Data is derived from the row number (no random()), so two builds at one scale hold the same values.
 */
import type pg from 'pg';
import type { TableName } from '../core/model.js';

export const SAMPLE_SCHEMA = 'shop';

/** Every table createSampleSchema creates, in load order (parents before children). */
export const SAMPLE_TABLES: readonly TableName[] = [
  { schema: SAMPLE_SCHEMA, name: 'customers' },
  { schema: SAMPLE_SCHEMA, name: 'products' },
  { schema: SAMPLE_SCHEMA, name: 'orders' },
  { schema: SAMPLE_SCHEMA, name: 'Order Items' },
  { schema: SAMPLE_SCHEMA, name: 'events' },
  { schema: SAMPLE_SCHEMA, name: 'documents' },
];

export interface SampleSchemaOptions {
  /** 1 ≈ 1 M rows and ~50 MB of documents; 0.01 for tests. */
  scale?: number;
}

export interface SampleSchemaResult {
  tables: TableName[];
  /** Exact row counts by table key `schema.name`, counted after the load. */
  rows: Record<string, number>;
}

/** Row counts at scale 1; "Order Items" follows from orders (1 to 3 lines each, 2 on average). */
const BASE = { customers: 100_000, products: 20_000, orders: 250_000, events: 130_000, documents: 2_000 };

export async function createSampleSchema(client: pg.ClientBase, opts: SampleSchemaOptions = {}): Promise<SampleSchemaResult> {
  const scale = opts.scale ?? 1;
  if (!(scale > 0)) throw new Error(`scale must be positive, got ${scale}`);
  const n = (base: number) => Math.max(1, Math.round(base * scale));
  const customers = n(BASE.customers);
  const products = n(BASE.products);
  const orders = n(BASE.orders);
  const events = n(BASE.events);
  // Never below 20 documents, so even the smallest scale has one body big enough to be TOASTed.
  const documents = Math.max(20, n(BASE.documents));

  const statements = [
    // Re-runnable: a demo or test may build into a database that already has an earlier copy.
    `DROP SCHEMA IF EXISTS shop CASCADE`,
    `CREATE SCHEMA shop`,
    `CREATE TYPE shop.tier AS ENUM ('free', 'pro', 'enterprise')`,
    `CREATE TYPE shop.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled')`,
    `CREATE DOMAIN shop.positive_qty AS integer CHECK (VALUE > 0)`,

    `CREATE TABLE shop.customers (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       name text NOT NULL,
       email text NOT NULL,
       phone text,
       prefs jsonb NOT NULL DEFAULT '{}',
       tier shop.tier NOT NULL DEFAULT 'free',
       created_at timestamptz NOT NULL DEFAULT now())`,
    // Every 97th name carries the characters COPY text format must escape, plus non-ASCII.
    `INSERT INTO shop.customers (name, email, phone, prefs, tier, created_at)
     SELECT CASE WHEN g % 97 = 0 THEN E'O''Brien\\t"Zoë"\\n\\\\ 東京 ' || g ELSE 'Customer ' || g END,
            'customer' || g || '@example.com',
            CASE WHEN g % 5 = 0 THEN NULL ELSE '+1-555-' || lpad((g % 10000)::text, 4, '0') END,
            jsonb_build_object('newsletter', g % 2 = 0, 'lang', (ARRAY['en','fr','de','ja'])[1 + g % 4],
                               'tags', jsonb_build_array('t' || g % 7, 't' || g % 11)),
            (ARRAY['free','pro','enterprise']::shop.tier[])[1 + (g % 10) / 4],
            timestamptz '2020-01-01 00:00:00+00' + g * interval '7 minutes 13.123456 seconds'
     FROM generate_series(1, ${customers}) g`,

    `CREATE TABLE shop.products (
       id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
       n integer NOT NULL,
       sku text NOT NULL,
       name text NOT NULL,
       price numeric(12,2) NOT NULL,
       tags text[] NOT NULL DEFAULT '{}',
       thumbnail bytea)`,
    `INSERT INTO shop.products (n, sku, name, price, tags, thumbnail)
     SELECT g, 'SKU-' || lpad(g::text, 8, '0'), 'Product ' || g,
            round((1 + (g::bigint * 7919 % 100000) / 100.0)::numeric, 2),
            CASE WHEN g % 13 = 0 THEN '{}'::text[] ELSE ARRAY['cat' || g % 17, 'with space', 'quote"d', 'comma,' || g % 3] END,
            CASE WHEN g % 10 = 0 THEN NULL ELSE decode(repeat(md5(g::text), 1 + g % 16), 'hex') END
     FROM generate_series(1, ${products}) g`,

    `CREATE TABLE shop.orders (
       id bigserial PRIMARY KEY,
       customer_id bigint NOT NULL,
       status shop.order_status NOT NULL,
       placed_at timestamptz NOT NULL,
       subtotal numeric(12,2) NOT NULL,
       tax numeric(12,2) NOT NULL,
       total numeric(14,2) NOT NULL,
       delivery_window interval,
       note text)`,
    `INSERT INTO shop.orders (customer_id, status, placed_at, subtotal, tax, total, delivery_window, note)
     SELECT 1 + (g::bigint * 31) % ${customers},
            (ARRAY['pending','paid','shipped','delivered','cancelled']::shop.order_status[])[1 + g % 5],
            timestamptz '2022-06-01 12:00:00+00' + g * interval '97 seconds',
            s, round(s * 0.2, 2), s + round(s * 0.2, 2),
            CASE WHEN g % 4 = 0 THEN NULL ELSE make_interval(days => g % 9, hours => g % 24, mins => g % 60) END,
            CASE WHEN g % 50 = 0 THEN 'leave at door' END
     FROM generate_series(1, ${orders}) g, LATERAL (SELECT round((5 + (g::bigint * 104729 % 50000) / 100.0)::numeric, 2) AS s) x`,

    `CREATE TABLE shop."Order Items" (
       order_id bigint NOT NULL,
       line_no integer NOT NULL,
       product_id uuid NOT NULL,
       quantity shop.positive_qty NOT NULL,
       unit_price numeric(12,2) NOT NULL,
       "select" text,
       PRIMARY KEY (order_id, line_no))`,
    `INSERT INTO shop."Order Items" (order_id, line_no, product_id, quantity, unit_price, "select")
     SELECT o.id, l, p.id, (1 + (o.id + l) % 5)::int, p.price, CASE WHEN (o.id + l) % 8 = 0 THEN 'gift wrap' END
     FROM shop.orders o
     CROSS JOIN LATERAL generate_series(1, 1 + (o.id % 3)::int) l
     JOIN shop.products p ON p.n = 1 + (o.id * 7 + l * 13) % ${products}`,

    // No primary key: a migrator must copy it by physical ranges. A few exact duplicate rows exist on purpose.
    `CREATE TABLE shop.events (
       occurred_at timestamp without time zone NOT NULL,
       kind text NOT NULL,
       customer_id bigint,
       payload jsonb,
       source_ip inet)`,
    `INSERT INTO shop.events (occurred_at, kind, customer_id, payload, source_ip)
     SELECT timestamp '2024-01-01 00:00:00' + g * interval '1.5 seconds',
            (ARRAY['view','click','cart','checkout','login'])[1 + g % 5],
            CASE WHEN g % 3 = 0 THEN NULL ELSE 1 + g % ${customers} END,
            CASE WHEN g % 11 = 0 THEN NULL
                 ELSE jsonb_build_object('page', '/p/' || g % 1000, 'ms', g % 997, 'nested', jsonb_build_object('a', g % 2 = 0, 'n', NULL::text)) END,
            CASE WHEN g % 2 = 0 THEN ('10.' || g % 256 || '.' || (g / 256) % 256 || '.' || g % 200)::inet
                 ELSE ('2001:db8::' || to_hex(g / 65536) || ':' || to_hex(g % 65536))::inet END
     FROM generate_series(1, ${events - Math.max(1, Math.floor(events / 1000))}) g`,
    `INSERT INTO shop.events SELECT * FROM shop.events ORDER BY occurred_at LIMIT ${Math.max(1, Math.floor(events / 1000))}`,

    // Every 20th document is 200-600 KB of hex text (barely compressible), so it is stored out of line in TOAST.
    `CREATE TABLE shop.documents (
       id integer PRIMARY KEY,
       title text NOT NULL,
       body text NOT NULL,
       updated_at timestamptz NOT NULL)`,
    `INSERT INTO shop.documents (id, title, body, updated_at)
     SELECT g, 'Document ' || g,
            (SELECT string_agg(md5(g::text || ':' || s::text), '')
               FROM generate_series(1, CASE WHEN g % 20 = 1 THEN 6400 + (g * 37 % 12800) ELSE 10 + g % 60 END) s),
            timestamptz '2023-03-01 00:00:00+00' + g * interval '1 hour'
     FROM generate_series(1, ${documents}) g`,

    // Constraints and secondary indexes after the load: building them once is much faster than maintaining them.
    `CREATE UNIQUE INDEX customers_email_key ON shop.customers (email)`,
    `CREATE UNIQUE INDEX products_sku_key ON shop.products (sku)`,
    `CREATE INDEX products_tags_idx ON shop.products USING gin (tags)`,
    `CREATE INDEX orders_customer_idx ON shop.orders (customer_id)`,
    `CREATE INDEX orders_placed_at_idx ON shop.orders (placed_at DESC) WHERE status <> 'cancelled'`,
    `CREATE INDEX "Order Items_product_idx" ON shop."Order Items" (product_id)`,
    `CREATE INDEX events_occurred_at_idx ON shop.events (occurred_at)`,
    `CREATE INDEX documents_title_lower_idx ON shop.documents (lower(title))`,
    `ALTER TABLE shop.orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES shop.customers (id)`,
    `ALTER TABLE shop."Order Items" ADD CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES shop.orders (id) ON DELETE CASCADE`,
    `ALTER TABLE shop."Order Items" ADD CONSTRAINT order_items_product_fk FOREIGN KEY (product_id) REFERENCES shop.products (id)`,
    // The planner's row and size estimates come from these statistics.
    `ANALYZE ${SAMPLE_TABLES.map((t) => `shop."${t.name}"`).join(', ')}`,
  ];
  for (const sql of statements) await client.query(sql);

  const rows: Record<string, number> = {};
  for (const t of SAMPLE_TABLES) {
    const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM shop."${t.name}"`);
    rows[`${t.schema}.${t.name}`] = Number(r.rows[0]?.n ?? 0);
  }
  return { tables: SAMPLE_TABLES.map((t) => ({ ...t })), rows };
}
