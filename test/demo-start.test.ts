/** The demo's servers start on a loaded machine: a port taken between "found free" and "bound", a checkout root can read but `postgres` cannot. */
import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { assertReachableByPostgres, startCluster } from '../src/embedded/cluster.js';

describe('embedded cluster start', () => {
  it('starts on another port when the one it chose was taken meanwhile', async () => {
    const squatter = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
    const taken = (squatter.address() as { port: number }).port;
    const cluster = await startCluster({ port: taken });
    try {
      expect(cluster.port).not.toBe(taken);
      const c = new pg.Client(cluster.url);
      await c.connect();
      expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      await c.end();
    } finally {
      await cluster.stop();
      squatter.close();
    }
  });

  it.skipIf(process.getuid?.() !== 0)('names the directory the postgres user cannot enter, and the fix', () => {
    const home = mkdtempSync(join(tmpdir(), 'ferry-private-')); // mode 0700, as mktemp -d makes it
    const bin = join(home, 'ferry', 'node_modules', 'bin');
    mkdirSync(bin, { recursive: true });
    chmodSync(home, 0o700);
    expect(() => assertReachableByPostgres(bin)).toThrow(new RegExp(`cannot enter ${home} \\(mode 700\\)`));
    try {
      assertReachableByPostgres(bin);
    } catch (err) {
      expect((err as { hint?: string }).hint).toContain(`chmod o+x ${home}`);
    }
    chmodSync(home, 0o711);
    expect(() => assertReachableByPostgres(bin)).not.toThrow();
  });
});
