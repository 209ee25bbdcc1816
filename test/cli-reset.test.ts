/**
 * `ferry reset` discards a flow completely (slot, publication, `_ferry` on the target, local state) so that the
 * next run starts over.
 */
import { describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, waitForPhase, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();

const leftovers = async (urls: { sourceUrl: string; targetUrl: string }) => ({
  slots: (await query(urls.sourceUrl, `SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'ferry_again'`)).length,
  publications: (await query(urls.sourceUrl, `SELECT pubname FROM pg_publication WHERE pubname = 'ferry_again'`)).length,
  bookkeeping: (await query(urls.targetUrl, `SELECT nspname FROM pg_namespace WHERE nspname = '_ferry'`)).length,
});

async function runUntilStreaming(config: string, targetUrl: string, rows: number) {
  const run = startFerry(['run', config]);
  await waitFor('the copy', async () => {
    const r = await query<{ n: string }>(targetUrl, `SELECT count(*)::text AS n FROM app.t`).catch(() => [{ n: '0' }]);
    return Number(r[0]!.n) === rows;
  });
  await waitForPhase(config, 'streaming');
  run.child.kill('SIGINT');
  expect((await run.exited).code).toBe(0);
}

describe('ferry reset', () => {
  it('drops the slot, the publication, _ferry and the local state, and the flow starts over', async () => {
    const urls = await freshDatabases(pair(), 'reset');
    await query(urls.sourceUrl, `CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text); INSERT INTO app.t SELECT g, 'v' FROM generate_series(1, 1000) g`);
    const config = writeConfig({
      name: 'again',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl, onExistingRows: 'truncate' },
      include: ['app.*'],
      mode: 'snapshot+cdc',
      workers: 1,
      cdc: { batchMs: 100, heartbeatSeconds: 1 },
    });
    await runUntilStreaming(config, urls.targetUrl, 1000);
    expect(await leftovers(urls)).toEqual({ slots: 1, publications: 1, bookkeeping: 1 });

    const reset = await ferry(['reset', config, '--yes']);
    expect(reset.stderr).toBe('');
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain('flow again reset');
    expect(await leftovers(urls)).toEqual({ slots: 0, publications: 0, bookkeeping: 0 });
    const status = await ferry(['status', config]);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('flow again is not in');
    // Idempotent: a second reset finds nothing to drop and succeeds.
    expect((await ferry(['reset', config, '-y'])).code).toBe(0);

    // Begin again: a new slot, a fresh copy (the target's rows are replaced, as configured).
    await query(urls.sourceUrl, `INSERT INTO app.t SELECT g, 'w' FROM generate_series(1001, 1500) g`);
    await runUntilStreaming(config, urls.targetUrl, 1500);
    expect(await leftovers(urls)).toEqual({ slots: 1, publications: 1, bookkeeping: 1 });
    expect((await ferry(['reset', config, '--yes'])).code).toBe(0);
  });
});
