import type { EndpointConfig } from './schema.js';

/**
 * Where an endpoint is, never its password: `host:port/db`, or `user@host:port/db` with `withUser`. Used to name
 * endpoints in errors and to derive a flow id (which must not change, so neither may this text).
 */
export function describeEndpoint(e: EndpointConfig, opts: { withUser: boolean; unparseable: string }): string {
  // mongodb:// URLs may list several hosts (`h1:27017,h2:27017`), which URL() refuses: read them by hand.
  const mongo = e.url ? /^mongodb(?:\+srv)?:\/\/(?:([^@/]*)@)?([^/?]*)(\/[^?]*)?/i.exec(e.url) : null;
  if (mongo) {
    const user = opts.withUser && mongo[1] ? `${decodeURIComponent(mongo[1].split(':')[0]!)}@` : '';
    return `${user}${mongo[2]}${mongo[3] ?? '/'}`;
  }
  if (e.url) {
    try {
      const u = new URL(e.url);
      const user = opts.withUser && u.username ? `${decodeURIComponent(u.username)}@` : '';
      return `${user}${u.hostname}:${u.port || 5432}${u.pathname}`;
    } catch {
      return opts.unparseable;
    }
  }
  const user = opts.withUser && e.user ? `${e.user}@` : '';
  return `${user}${e.host}:${e.port ?? 5432}/${e.database ?? ''}`;
}
