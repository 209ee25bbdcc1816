/**
 * The demo's shop traffic on the source while Ferry streams: orders placed (an order, its lines and an event),
 * updated (status moves on; now and then a document's title changes and its large TOASTed body does not), and
 * cancelled (status `cancelled`, lines deleted). Several clients, paced to a transaction rate so that a small
 * machine keeps up; every transaction is real SQL on the real tables, so what streams is what an application does.
 */
import pg from 'pg';

export interface WorkloadCounts {
  placed: number;
  updated: number;
  cancelled: number;
  transactions: number;
  errors: number;
}

export interface WorkloadOptions {
  url: string;
  seconds: number;
  clients?: number;
  /** Transactions per second across all clients. */
  rate?: number;
  signal?: AbortSignal;
}

export async function runWorkload(opts: WorkloadOptions): Promise<WorkloadCounts> {
  const counts: WorkloadCounts = { placed: 0, updated: 0, cancelled: 0, transactions: 0, errors: 0 };
  const clients = opts.clients ?? 3;
  const perClientMs = 1000 / ((opts.rate ?? 150) / clients);
  const until = Date.now() + opts.seconds * 1000;
  const bounds = new pg.Client({ connectionString: opts.url });
  // A server that goes away (Ctrl-C stops the demo's servers) must end the workload, not crash the process.
  bounds.on('error', () => {});
  await bounds.connect();
  const { rows } = await bounds.query<{ customers: string; products: string; documents: string }>(
    `SELECT (SELECT max(id) FROM shop.customers)::text AS customers, (SELECT max(n) FROM shop.products)::text AS products,
            (SELECT max(id) FROM shop.documents)::text AS documents`,
  );
  await bounds.end();
  const maxCustomer = Number(rows[0]!.customers);
  const maxProduct = Number(rows[0]!.products);
  const maxDocument = Number(rows[0]!.documents);
  const rnd = (n: number) => 1 + Math.floor(Math.random() * n);

  const one = async (c: pg.Client) => {
    const roll = rnd(100);
    await c.query('BEGIN');
    try {
      if (roll <= 55) {
        const { rows: o } = await c.query<{ id: string }>(
          `INSERT INTO shop.orders (customer_id, status, placed_at, subtotal, tax, total, note)
           VALUES ($1, 'pending', now(), 0, 0, 0, $2) RETURNING id`,
          [rnd(maxCustomer), roll % 10 === 0 ? 'placed during the demo' : null],
        );
        const id = o[0]!.id;
        const lines = 1 + (roll % 3);
        for (let l = 1; l <= lines; l++) {
          await c.query(
            `INSERT INTO shop."Order Items" (order_id, line_no, product_id, quantity, unit_price)
             SELECT $1, $2, id, $3, price FROM shop.products WHERE n = $4`,
            [id, l, 1 + (roll % 4), rnd(maxProduct)],
          );
        }
        await c.query(
          `UPDATE shop.orders o SET subtotal = s, tax = round(s * 0.2, 2), total = s + round(s * 0.2, 2)
           FROM (SELECT coalesce(sum(quantity * unit_price), 0) AS s FROM shop."Order Items" WHERE order_id = $1) x WHERE o.id = $1`,
          [id],
        );
        await c.query(`INSERT INTO shop.events (occurred_at, kind, customer_id, payload) VALUES (now()::timestamp, 'checkout', $1, $2)`, [
          rnd(maxCustomer),
          JSON.stringify({ order: Number(id) }),
        ]);
        counts.placed++;
      } else if (roll <= 88) {
        await c.query(
          `UPDATE shop.orders SET status = CASE status WHEN 'pending' THEN 'paid' WHEN 'paid' THEN 'shipped' WHEN 'shipped' THEN 'delivered' ELSE status END::shop.order_status
           WHERE id = (SELECT max(id) - $1 FROM shop.orders)`,
          [rnd(2000)],
        );
        if (roll % 8 === 0) {
          await c.query(`UPDATE shop.documents SET title = title || ' (edited)', updated_at = now() WHERE id = $1`, [rnd(maxDocument)]);
        } else {
          await c.query(`UPDATE shop.customers SET prefs = prefs || jsonb_build_object('last_seen', now()::text) WHERE id = $1`, [rnd(maxCustomer)]);
        }
        counts.updated++;
      } else {
        const { rows: o } = await c.query<{ id: string }>(
          `UPDATE shop.orders SET status = 'cancelled', note = 'cancelled by the customer'
           WHERE id = (SELECT max(id) - $1 FROM shop.orders) AND status IN ('pending', 'paid') RETURNING id`,
          [rnd(500)],
        );
        if (o[0]) await c.query(`DELETE FROM shop."Order Items" WHERE order_id = $1`, [o[0].id]);
        counts.cancelled++;
      }
      await c.query('COMMIT');
      counts.transactions++;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      counts.errors++;
      if (counts.errors > 50) throw err;
    }
  };

  const worker = async (i: number) => {
    const c = new pg.Client({ connectionString: opts.url, application_name: `ferry-demo-shop-${i}` });
    c.on('error', () => {});
    await c.connect();
    try {
      let next = Date.now() + i * (perClientMs / clients);
      while (Date.now() < until && !opts.signal?.aborted) {
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        await one(c);
        next = Math.max(next + perClientMs, Date.now() - perClientMs * 5);
      }
    } finally {
      await c.end().catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => worker(i)));
  return counts;
}
