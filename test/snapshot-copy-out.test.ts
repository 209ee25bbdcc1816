/**
 * The snapshot's lean COPY TO reader (snapshot-copy-out.ts) against a real server: the bytes it hands out are exactly
 * pg-copy-streams' (text and binary, rows from a few bytes to several MB, so message headers fall across socket
 * reads; notices between rows; a slow consumer), an error in the middle of the COPY fails the stream and leaves the
 * connection usable, and a stream the consumer destroys stops reading the socket.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { copyOut } from '../src/adapters/postgres/snapshot-copy-out.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';

let cluster: Cluster;
let client: pg.Client;

beforeAll(async () => {
  cluster = await startCluster();
  client = new pg.Client({ connectionString: cluster.url, types: rawTypes });
  await client.connect();
  await client.query(`
    CREATE TABLE mixed (id int PRIMARY KEY, t text, n numeric, ts timestamptz, j jsonb, b bytea, a int[]);
    -- Row sizes from a few bytes to 3 MB, NULLs, escapes (tab, newline, backslash) in text COPY.
    INSERT INTO mixed SELECT g,
      CASE WHEN g % 11 = 0 THEN NULL WHEN g % 997 = 0 THEN repeat(md5(g::text), 100000) ELSE repeat('x', g % 300) || E'\\t\\n\\\\' END,
      g / 7.0, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
      jsonb_build_object('g', g), decode(md5(g::text), 'hex'), ARRAY[g, -g]
    FROM generate_series(1, 30000) g;
    CREATE FUNCTION noisy(i int) RETURNS int LANGUAGE plpgsql AS $$
      BEGIN IF i % 100 = 0 THEN RAISE NOTICE 'row %', i; END IF; RETURN i; END $$;
  `);
}, 120_000);

afterAll(async () => {
  await client?.end().catch(() => {});
  await cluster?.stop();
});

/** Digest, byte count and the sizes of the pieces of a stream; `slow` waits between pieces. */
async function drain(stream: Readable, slow = false): Promise<{ md5: string; bytes: number; pieces: number }> {
  const h = createHash('md5');
  let bytes = 0;
  let pieces = 0;
  for await (const chunk of stream) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    pieces++;
    if (slow && pieces % 50 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  return { md5: h.digest('hex'), bytes, pieces };
}

const QUERIES = [
  'COPY mixed TO STDOUT',
  'COPY mixed TO STDOUT (FORMAT binary)',
  'COPY (SELECT id, noisy(id), t FROM mixed WHERE id > 100 ORDER BY id DESC) TO STDOUT (FORMAT binary)',
  'COPY (SELECT id FROM mixed WHERE id < 0) TO STDOUT (FORMAT binary)',
  'COPY (SELECT id FROM mixed WHERE id < 0) TO STDOUT',
];

describe('lean COPY TO reader', () => {
  for (const sql of QUERIES) {
    it(`hands out exactly pg-copy-streams' bytes: ${sql}`, async () => {
      const theirs = client.query(copyStreams.to(sql));
      const expected = await drain(theirs);
      for (const slow of [false, true]) {
        const ours = client.query(copyOut(sql));
        const got = await drain(ours, slow);
        expect({ md5: got.md5, bytes: got.bytes }).toEqual({ md5: expected.md5, bytes: expected.bytes });
        expect(ours.rowCount).toBe(theirs.rowCount);
        // Pieces are socket reads, not rows: far fewer than the rows of a big COPY.
        if (ours.rowCount > 1000) expect(got.pieces).toBeLessThan(ours.rowCount / 10);
      }
      // The connection goes on as usual after the COPY.
      expect((await client.query('SELECT 41 + 1 AS n')).rows[0].n).toBe('42');
    }, 120_000);
  }

  it('fails the stream on an error in the middle of the COPY and leaves the connection usable', async () => {
    const ours = client.query(copyOut('COPY (SELECT g, 1 / (20000 - g) FROM generate_series(1, 30000) g) TO STDOUT'));
    await expect(drain(ours)).rejects.toThrow(/division by zero/);
    expect((await client.query('SELECT 1 AS n')).rows[0].n).toBe('1');
    const bad = client.query(copyOut('COPY no_such_table TO STDOUT'));
    await expect(drain(bad)).rejects.toThrow(/no_such_table/);
    expect((await client.query('SELECT 2 AS n')).rows[0].n).toBe('2');
  }, 120_000);

  it('stops reading when the consumer destroys the stream (the connection is then dropped)', async () => {
    const c = new pg.Client({ connectionString: cluster.url, types: rawTypes });
    await c.connect();
    const ended = new Promise((resolve) => c.once('end', resolve));
    c.on('error', () => {});
    const ours = c.query(copyOut('COPY mixed TO STDOUT (FORMAT binary)'));
    let got = 0;
    for await (const chunk of ours) {
      got += (chunk as Buffer).length;
      if (got > 100_000) break; // destroys the stream
    }
    expect(ours.destroyed).toBe(true);
    // What the snapshot source does with a COPY cut short: the connection is not reused.
    await c.end();
    await ended;
    // The server ends the COPY's backend.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'COPY mixed TO STDOUT (FORMAT binary)%'`);
      if (Number(rows[0].n) === 0) break;
      if (Date.now() > deadline) throw new Error('the COPY backend is still there');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);
});
