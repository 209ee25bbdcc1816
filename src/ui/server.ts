/**
 * The dashboard's HTTP server: the page, uPlot (served from node_modules: nothing from a CDN), and `/api/state`
 * (the sampler's latest state as JSON). Listens on 127.0.0.1 unless told otherwise; on any other address every
 * request must carry the token (`?token=` on the page, then a header from the page's script).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { FerryError } from '../core/errors.js';
import { dashboardPage } from './page.js';
import type { Sampler } from './sampler.js';

export interface DashboardOptions {
  host?: string;
  port?: number;
  token?: string;
  /** Keep the process alive while serving (`ferry ui`); otherwise the dashboard ends with the run it shows. */
  keepAlive?: boolean;
}

export interface Dashboard {
  url: string;
  /** The URL to open: with the token when one is needed. */
  openUrl: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export async function startDashboard(sampler: Sampler, opts: DashboardOptions = {}): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? (LOOPBACK.has(host) ? undefined : randomBytes(16).toString('hex'));
  const require = createRequire(import.meta.url);
  const assets: Record<string, { type: string; body: Buffer }> = {
    '/uplot.js': { type: 'text/javascript', body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')) },
    '/uplot.css': { type: 'text/css', body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) },
    '/': { type: 'text/html; charset=utf-8', body: Buffer.from(dashboardPage()) },
  };

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!token) return true;
    const given = url.searchParams.get('token') ?? req.headers['x-ferry-token'];
    if (typeof given !== 'string') return false;
    const a = Buffer.from(given);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (req.method !== 'GET') {
      res.writeHead(405, headers).end();
      return;
    }
    if (!authorized(req, url)) {
      res.writeHead(401, { ...headers, 'content-type': 'text/plain' }).end('ferry dashboard: add ?token=… (printed by the ferry command)\n');
      return;
    }
    if (url.pathname === '/api/state') {
      try {
        const body = JSON.stringify(await sampler.state());
        res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(body);
      } catch (err) {
        res.writeHead(503, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ error: String((err as Error).message ?? err) }));
      }
      return;
    }
    const asset = assets[url.pathname];
    if (!asset) {
      res.writeHead(404, headers).end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': asset.type }).end(asset.body);
  };

  const server: Server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new FerryError(
          `the dashboard cannot listen on ${host}:${opts.port ?? 4280}: ${err.code ?? err.message}`,
          err.code === 'EADDRINUSE' ? 'pass another port with --port (or --ui-port), or 0 for any free one' : 'check the --host address',
        ),
      ),
    );
    server.listen(opts.port ?? 4280, host, () => resolve());
  });
  if (!opts.keepAlive) server.unref();
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  return {
    url,
    openUrl: token ? `${url}?token=${token}` : url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
