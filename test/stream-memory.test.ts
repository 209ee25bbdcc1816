/**
 * The memory of a streaming `ferry run` (issue 10 (e)), through the real CLI on real PostgreSQL: a transaction of
 * 32 MB of TOASTed rows streams through, and the process's peak RSS (VmHWM) stays bounded. Measured on 2 loaded
 * cores: about 77 MB before the burst and 92-96 MB after it. The bounds below leave room for noise but not for the
 * regressions this guards: the tsx loader thread back in the CLI (about +40 MB before the burst), the MongoDB driver
 * loaded for a PostgreSQL flow (+10 MB), an uncapped young generation (+25-30 MB through the burst), a backlog or an
 * apply chunk that grew.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, REAL_BIN, startFerry, waitFor, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

function status(pid: number): { hwmMb: number } {
  return { hwmMb: Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024 };
}

describe('streaming memory', () => {
  it('a 32 MB transaction streams through a ferry run whose peak RSS stays near its idle size', async () => {
    const urls = await freshDatabases(pair(), 'memory');
    await query(urls.sourceUrl, `CREATE TABLE public.blobs (id bigint PRIMARY KEY, payload text);
      ALTER TABLE public.blobs ALTER COLUMN payload SET STORAGE EXTERNAL;`);
    const cfg = writeConfig({
      name: 'memory',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['public.*'],
      mode: 'snapshot+cdc',
      workers: 2,
    });
    // The user's binary (bin/ferry.js: compiled sources, young-generation cap), not the tests' build.
    const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'warn' }, REAL_BIN);
    const pid = run.child.pid!;
    await waitFor('streaming', async () => (await ferry(['status', cfg, '--json'])).stdout.includes('"phase": "streaming"'), 90_000);
    await waitFor('the position table', async () => (await query(urls.targetUrl, `SELECT to_regclass('_ferry.cdc_position') t`))[0]!.t !== null, 30_000);
    const before = status(pid);

    // 8192 rows of 4 KB (uncompressed TOAST): 32 MB of values in one transaction.
    const rows = 8192;
    await query(urls.sourceUrl, `INSERT INTO public.blobs SELECT g, repeat(md5(g::text), 128) FROM generate_series(1, ${rows}) g`);
    await waitFor('the transaction on the target', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM public.blobs`))[0]!.n === String(rows), 90_000);
    const after = status(pid);

    const digest = `SELECT count(*) n, md5(string_agg(id || ':' || md5(payload), ',' ORDER BY id)) h FROM public.blobs`;
    expect(await query(urls.targetUrl, digest)).toEqual(await query(urls.sourceUrl, digest));
    await ferry(['stop', cfg]);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);

    expect(before.hwmMb, 'VmHWM once streaming, before the burst').toBeLessThan(100);
    expect(after.hwmMb, 'VmHWM through the 32 MB transaction').toBeLessThan(118);
  });
});
