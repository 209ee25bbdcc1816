/**
 * The SQL of each scenario: tables, seed rows and the bursts, all generated on the source server itself
 * (generate_series, or procedures that COMMIT per transaction) so the client's speed never limits the burst.
 * Every burst is deterministic: Ferry and native get the same rows, and the target's digest must equal the source's.
 */

export interface Workload {
  ddl: string;
  /** Tables published to native (Ferry takes public.*). */
  tables: string[];
  seed?: string;
  /** Columns compared by the digest, per table. */
  digest: Record<string, string[]>;
}

const EVENTS = `CREATE TABLE public.events (id bigint PRIMARY KEY, a int, t text, n numeric(14,4), created timestamptz DEFAULT clock_timestamp(), j jsonb)`;
const EVENT_COLS = ['id', 'a', 't', 'n', 'created', 'j'];

/** (a) one transaction of `rows` inserts; its last row has id = rows. */
export function bigTxn(rows: number): Workload & { burst: string; lastId: number } {
  return {
    ddl: EVENTS,
    tables: ['public.events'],
    digest: { 'public.events': EVENT_COLS },
    burst: `INSERT INTO public.events (id, a, t, n, j) SELECT g, g % 1000, 'row ' || g || ' ' || md5(g::text), g / 7.0, jsonb_build_object('g', g) FROM generate_series(1, ${rows}) g`,
    lastId: rows,
  };
}

/** (b) `n` one-row transactions from one client; the last has id = 10,000,000 + n. */
export function smallTxns(n: number): Workload & { burst: string; lastId: number } {
  return {
    ddl: `${EVENTS};
      CREATE PROCEDURE small_burst(n int) LANGUAGE plpgsql AS $$
      BEGIN FOR i IN 1..n LOOP
        INSERT INTO public.events (id, a, t, n, j) VALUES (10000000 + i, i % 1000, 'small ' || i, i / 3.0, '{"k": 1}');
        COMMIT;
      END LOOP; END $$`,
    tables: ['public.events'],
    digest: { 'public.events': EVENT_COLS },
    burst: `CALL small_burst(${n})`,
    lastId: 10_000_000 + n,
  };
}

/**
 * (c) `clients` concurrent clients, `perClient` transactions each, 5 changes per transaction: 2 inserts, 2 updates
 * of seeded rows, 1 delete of a seeded row. Client c owns transaction numbers k ≡ c (mod clients); every update
 * and delete hits a row no other transaction touches (no lock waits between clients, no deadlocks).
 * Seeded ids 1..4T (T = all transactions): updates 1..2T, deletes 2T+1..3T, inserts above 4T. The marker
 * transaction each client commits last inserts id -1 - c.
 */
export function mixedBurst(changes: number, clients: number): Workload & { calls: string[]; perClient: number; markers: number[] } {
  const perClient = Math.max(1, Math.ceil(changes / 5 / clients));
  const t = perClient * clients;
  const p = 4 * t;
  return {
    ddl: `CREATE TABLE public.mixed (id bigint PRIMARY KEY, a int, t text, n numeric(14,4), u timestamptz);
      CREATE PROCEDURE mixed_burst(client int, clients int, txns int, seeded bigint) LANGUAGE plpgsql AS $$
      DECLARE k bigint;
      BEGIN
        FOR i IN 0..txns-1 LOOP
          k := i::bigint * clients + client;
          INSERT INTO public.mixed (id, a, t, n, u) VALUES (seeded + 1 + 2*k, i, 'ins ' || k || ' ' || md5(k::text), k / 7.0, '2025-01-01'),
                                                           (seeded + 2 + 2*k, i, 'ins ' || k, k / 3.0, NULL);
          UPDATE public.mixed SET a = a + 1, t = 'upd ' || k, n = n + 1, u = '2025-06-01' WHERE id = 1 + 2*k;
          UPDATE public.mixed SET a = a + 2, t = 'upd ' || k || ' ' || md5(k::text), u = NULL WHERE id = 2 + 2*k;
          DELETE FROM public.mixed WHERE id = ${2 * t} + 1 + k;
          COMMIT;
        END LOOP;
        INSERT INTO public.mixed (id, a) VALUES (-1 - client, txns);
        COMMIT;
      END $$`,
    tables: ['public.mixed'],
    seed: `INSERT INTO public.mixed SELECT g, g % 100, 'seed ' || md5(g::text), g / 11.0, '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, ${p}) g`,
    digest: { 'public.mixed': ['id', 'a', 't', 'n', 'u'] },
    calls: Array.from({ length: clients }, (_, c) => `CALL mixed_burst(${c}, ${clients}, ${perClient}, ${p})`),
    perClient,
    markers: Array.from({ length: clients }, (_, c) => -1 - c),
  };
}

/** (d) sustained load: each transaction inserts `rows - 1` events and one probe row (its number) that the poller reads. */
export function lagLoad(): Workload & { txn(i: number, rows: number): string } {
  return {
    ddl: `${EVENTS}; CREATE TABLE public.lag_probe (txn bigint PRIMARY KEY)`,
    tables: ['public.events', 'public.lag_probe'],
    digest: {},
    txn: (i, rows) => {
      const lo = 100_000_000 + i * rows;
      // One simple-protocol query with two statements is one transaction.
      return `INSERT INTO public.events (id, a, t) SELECT g, ${i % 1000}, 'lag ' || md5(g::text) FROM generate_series(${lo}, ${lo + rows - 2}) g; INSERT INTO public.lag_probe VALUES (${i})`;
    },
  };
}

/**
 * (e) one transaction of about `mb` MB of row values, `rowKb` KB a row. The column is STORAGE EXTERNAL: values over
 * the TOAST threshold are stored out of line uncompressed, so the WAL (and what the decoder reassembles) really is
 * about `mb` MB, as for incompressible data.
 */
export function hugeTxn(mb: number, rowKb: number): Workload & { burst: string; lastId: number; rows: number } {
  const rows = Math.max(1, Math.round((mb * 1024) / rowKb));
  const md5s = Math.max(1, Math.round((rowKb * 1024) / 32));
  return {
    ddl: `CREATE TABLE public.blobs (id bigint PRIMARY KEY, payload text); ALTER TABLE public.blobs ALTER COLUMN payload SET STORAGE EXTERNAL`,
    tables: ['public.blobs'],
    digest: { 'public.blobs': ['id', 'payload'] },
    burst: `INSERT INTO public.blobs SELECT g, repeat(md5(g::text), ${md5s}) FROM generate_series(1, ${rows}) g`,
    lastId: rows,
    rows,
  };
}
