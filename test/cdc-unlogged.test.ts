/**
 * UNLOGGED tables in a snapshot+cdc flow, through the real CLI on real PostgreSQL: PostgreSQL refuses them in a
 * publication (their changes never reach the WAL), which used to fail the run after the target tables were created.
 * Now they are copied by the snapshot, left out of the publication, and named in a warning.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

describe('unlogged tables', () => {
  it('are copied, never published, named in a warning; logged tables keep streaming', async () => {
    const urls = await freshDatabases(pair(), 'unlogged');
    await query(urls.sourceUrl, `
      CREATE TABLE public.kept (id int PRIMARY KEY, v text);
      CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY, v text);
      INSERT INTO public.kept SELECT g, 'k' || g FROM generate_series(1, 500) g;
      INSERT INTO public.scratch SELECT g, 's' || g FROM generate_series(1, 300) g;
      ANALYZE;`);
    const cfg = writeConfig({
      name: 'unlogged',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['public.*'],
      mode: 'snapshot+cdc',
      cdc: { batchMs: 200, heartbeatSeconds: 1 },
    });
    const run = startFerry(['run', cfg], { FERRY_LOG_LEVEL: 'warn' });
    await waitForPhase(cfg, 'streaming', 90_000);

    // The publication holds the logged table only.
    const published = await query(urls.sourceUrl, `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables ORDER BY 1`);
    expect(published.map((r) => r.t)).toEqual(['public.kept']);

    await query(urls.sourceUrl, `
      INSERT INTO public.kept SELECT g, 'new' FROM generate_series(501, 600) g;
      INSERT INTO public.scratch SELECT g, 'new' FROM generate_series(301, 400) g;`);
    await waitFor('the logged table streamed', async () => (await query(urls.targetUrl, `SELECT count(*) n FROM public.kept`))[0]!.n === '600', 30_000);

    await ferry(['stop', cfg]);
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(0);
    // Snapshot rows of the unlogged table arrived; its later inserts did not (and were never attempted).
    const scratch = await query(urls.targetUrl, `SELECT count(*) n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) h FROM public.scratch WHERE id <= 300`);
    const srcScratch = await query(urls.sourceUrl, `SELECT count(*) n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) h FROM public.scratch WHERE id <= 300`);
    expect(scratch).toEqual(srcScratch);
    expect((await query(urls.targetUrl, `SELECT count(*) n FROM public.scratch`))[0]!.n).toBe('300');
    const kept = `SELECT count(*) n, md5(string_agg(id || ':' || v, ',' ORDER BY id)) h FROM public.kept`;
    expect(await query(urls.targetUrl, kept)).toEqual(await query(urls.sourceUrl, kept));
    // The warning names the table and the way forward.
    expect(ended.stdout + ended.stderr).toMatch(/unlogged tables are copied by the snapshot.*public\.scratch.*SET LOGGED/);
  });
});
