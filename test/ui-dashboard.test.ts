/**
 * The dashboard end to end: `ferry run --ui` on real PostgreSQL (snapshot+cdc), the page opened in headless
 * Chromium (Debian's, driven by playwright-core), numbers that move while changes stream, a screenshot; and the
 * token required when the dashboard listens off 127.0.0.1.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';
import { ferry, startFerry, waitFor, writeConfig } from './support/ferry-cli.js';

const pair = usePgPair();
const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT = join(tmpdir(), 'ferry-dashboard.png');

let browser: BrowserContext | undefined;
afterAll(async () => {
  await browser?.close();
});

async function launch(): Promise<BrowserContext> {
  // A fresh profile each time: nothing from an earlier run (cache, service workers) can make the page pass.
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'ferry-chromium-')), {
    viewport: { width: 1280, height: 1000 },
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  return browser;
}

const urlIn = (stderr: () => string) => /dashboard at (http:\/\/\S+)/.exec(stderr())?.[1];

describe.skipIf(!existsSync(CHROMIUM))('ferry run --ui', () => {
  it('serves a live dashboard whose numbers move while changes stream', async () => {
    const urls = await freshDatabases(pair(), 'ui');
    await query(
      urls.sourceUrl,
      `CREATE SCHEMA app;
       CREATE TABLE app.orders (id bigint PRIMARY KEY, status text NOT NULL, note text);
       CREATE TABLE app."odd.name ""quoted""" (id int PRIMARY KEY, v text);
       INSERT INTO app.orders SELECT g, 'new', repeat('x', 50) FROM generate_series(1, 40000) g;
       INSERT INTO app."odd.name ""quoted""" SELECT g, 'v' FROM generate_series(1, 100) g;
       ANALYZE;`,
    );
    const config = writeConfig({
      name: 'ui',
      source: { url: urls.sourceUrl },
      target: { url: urls.targetUrl },
      include: ['app.*'],
      mode: 'snapshot+cdc',
      rowsPerRange: 5000,
      batchRows: 2000,
      workers: 2,
      cdc: { batchMs: 100, heartbeatSeconds: 1 },
    });
    const run = startFerry(['run', config, '--ui', '--ui-port', '0']);
    let stderr = '';
    run.child.stderr!.on('data', (d) => (stderr += d));
    const url = await waitFor('the dashboard URL', async () => urlIn(() => stderr), 60_000);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const page = await (await launch()).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(url!);
    await expect.poll(() => page.locator('#phase').textContent(), { timeout: 60_000 }).toBe('streaming');
    // Per table rows and ranges, from the state store.
    const ordersRow = page.locator('#tables tr[data-table="app.orders"]');
    await expect.poll(() => ordersRow.locator('td').nth(3).textContent()).toBe('40.0k');
    await expect.poll(() => ordersRow.locator('td').nth(7).textContent()).toBe('8/8');
    expect(await page.locator('#tables tr[data-table=\'app.odd.name "quoted"\']').count()).toBe(1);

    // Changes on the source: the applied count, the per-table kinds and the graphs follow.
    const applied = async () => Number((await page.locator('#changes-applied').textContent())?.replace(/[^0-9.]/g, '') || 0);
    const before = await applied();
    await query(urls.sourceUrl, `UPDATE app.orders SET status = 'paid' WHERE id <= 300; DELETE FROM app.orders WHERE id > 39900; INSERT INTO app.orders VALUES (50001, 'new', NULL)`);
    await expect.poll(applied, { timeout: 30_000 }).toBeGreaterThanOrEqual(before + 401);
    const kinds = page.locator('#changes tr[data-table="app.orders"] td');
    await expect.poll(() => kinds.nth(1).textContent(), { timeout: 15_000 }).toBe('1 / 1');
    expect(await kinds.nth(2).textContent()).toBe('300 / 300');
    expect(await kinds.nth(3).textContent()).toBe('100 / 100');
    expect(await page.locator('#lag-seconds').textContent()).toMatch(/^\d+\.\d\d s$/);
    expect(await page.locator('#retained').textContent()).toMatch(/B$/);
    // A clock that moves and graphs that were drawn (uPlot loaded from the dashboard itself, not a CDN).
    const t1 = await page.locator('#elapsed').textContent();
    await page.waitForTimeout(1500);
    expect(await page.locator('#elapsed').textContent()).not.toBe(t1);
    expect(await page.locator('#chart-rate canvas').count()).toBe(1);
    expect(await page.locator('#chart-lag canvas').count()).toBe(1);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);

    run.child.kill('SIGINT');
    const exit = await run.exited;
    expect(exit.code).toBe(0);
  });

  it('asks for a token when listening off 127.0.0.1', async () => {
    const urls = await freshDatabases(pair(), 'uitoken');
    const config = writeConfig({ name: 'uitoken', source: { url: urls.sourceUrl }, target: { url: urls.targetUrl } });
    const ui = startFerry(['ui', config, '--host', '0.0.0.0', '--port', '0']);
    let stderr = '';
    ui.child.stderr!.on('data', (d) => (stderr += d));
    const url = await waitFor('the dashboard URL', async () => urlIn(() => stderr), 30_000);
    const withToken = new URL(url!);
    expect(withToken.searchParams.get('token')).toMatch(/^[0-9a-f]{32}$/);
    const bare = `http://127.0.0.1:${withToken.port}`;
    expect((await fetch(`${bare}/api/state`)).status).toBe(401);
    const ok = await fetch(`${bare}/api/state`, { headers: { 'x-ferry-token': withToken.searchParams.get('token')! } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { phase: string }).phase).toBe('not started');
    ui.child.kill('SIGINT');
    expect((await ui.exited).code).toBe(0);
  });
});

// The CLI refuses a dashboard port that is not a port (strict flags).
it('rejects a bad --ui-port', async () => {
  const r = await ferry(['run', 'x.yaml', '--ui', '--ui-port', 'http']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('--ui-port');
});
