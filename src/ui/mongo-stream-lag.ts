/**
 * A MongoDB change stream's lag, where a PostgreSQL flow shows its slot: MongoDB keeps nothing per consumer, so the
 * facts are the checkpoint's resume token and the source's oplog.
 *
 * - `clusterTime`: the cluster time the applied checkpoint stands for (its resume token's).
 * - `tokenAgeSeconds`: now minus that time, on this machine's clock. An idle replica set advances its cluster time
 *   about every 10 s (periodic no-op writes), so an idle flow shows up to about 10 s.
 * - `behindSeconds`: the source's current cluster time (from `hello`) minus the checkpoint's: the lag on the source's
 *   own clock, when the source can be reached.
 * - `oplogWindowSeconds`: the oplog's span (first to last entry). A token older than the window cannot be resumed
 *   (error 286, ChangeStreamHistoryLost): the flow must start over.
 */
import { MongoClient, type Document, type MongoClientOptions } from 'mongodb';
import { clusterTimeOfToken, isMongoPosition } from '../adapters/mongodb/stream/positions.js';
import type { EndpointConfig } from '../config/schema.js';

export interface ChangeStreamLag {
  clusterTime: string;
  /** ms since the epoch of the checkpoint's cluster time (whole seconds). */
  at: number;
  tokenAgeSeconds: number;
  behindSeconds: number | null;
  oplogWindowSeconds: number | null;
}

export { isMongoPosition };

/** A position as people read it: a MongoDB one by its cluster time, a PostgreSQL LSN as it is. */
export function describePosition(p: unknown): string {
  if (p === undefined || p === null) return '(not started)';
  if (typeof p === 'object' && isMongoPosition(p as never)) {
    const ct = (p as { clusterTime: string }).clusterTime;
    return `cluster time ${ct} (${new Date(Number(ct.split('.')[0]) * 1000).toISOString()})`;
  }
  return typeof p === 'string' ? p : JSON.stringify(p);
}

/** From the checkpoint alone (no connection): the token's time and age. */
export function tokenLag(position: unknown, now = Date.now()): ChangeStreamLag | undefined {
  if (!position || typeof position !== 'object' || !isMongoPosition(position as never)) return undefined;
  const p = position as { token: { _data: string }; clusterTime: string };
  const ct = clusterTimeOfToken(p.token) ?? { t: Number(p.clusterTime.split('.')[0]), i: 0 };
  const at = ct.t * 1000;
  return { clusterTime: p.clusterTime, at, tokenAgeSeconds: Math.max(0, (now - at) / 1000), behindSeconds: null, oplogWindowSeconds: null };
}

/** Reads the source's cluster time and oplog window, bounded in time (status must answer when the source does not). */
export class MongoLagReader {
  private client: MongoClient | undefined;

  constructor(private readonly source: EndpointConfig, private readonly timeoutMs = 3000) {}

  private open(): MongoClient {
    const e = this.source;
    const opts: MongoClientOptions = { appName: 'ferry-status', serverSelectionTimeoutMS: this.timeoutMs, connectTimeoutMS: this.timeoutMs, promoteValues: false };
    if (e.ssl === true || e.ssl === 'require' || e.ssl === 'verify-full') opts.tls = true;
    if (e.ssl === 'require') opts.tlsAllowInvalidCertificates = true;
    if (e.sslRootCert) opts.tlsCAFile = e.sslRootCert;
    return (this.client ??= new MongoClient(e.url ?? '', opts));
  }

  /** The checkpoint's lag, with the server's facts when it answers in time (else only the token's age). */
  async lag(position: unknown): Promise<ChangeStreamLag | undefined> {
    const base = tokenLag(position);
    if (!base) return undefined;
    try {
      const client = this.open();
      const hello = (await client.db('admin').command({ hello: 1 })) as Document;
      const ts = ((hello.$clusterTime as Document | undefined)?.clusterTime ?? hello.operationTime) as { t?: number; high?: number } | undefined;
      const serverSeconds = ts?.t ?? ts?.high;
      if (typeof serverSeconds === 'number') base.behindSeconds = Math.max(0, serverSeconds - base.at / 1000);
      const oplog = client.db('local').collection('oplog.rs');
      const [first] = await oplog.find({}, { projection: { ts: 1 }, maxTimeMS: this.timeoutMs }).sort({ $natural: 1 }).limit(1).toArray();
      const [last] = await oplog.find({}, { projection: { ts: 1 }, maxTimeMS: this.timeoutMs }).sort({ $natural: -1 }).limit(1).toArray();
      const secs = (d: Document | undefined) => (d?.ts as { t?: number } | undefined)?.t;
      const a = secs(first);
      const b = secs(last);
      if (a !== undefined && b !== undefined) base.oplogWindowSeconds = b - a;
    } catch {
      // Unreachable, or no right to read local.oplog.rs (a sharded cluster through mongos has none): token age only.
    }
    return base;
  }

  async close(): Promise<void> {
    await this.client?.close().catch(() => {});
  }
}

/** The status line of a change stream's lag. */
export function changeStreamLine(l: ChangeStreamLag): string {
  const parts = [`change stream: resume token ${l.tokenAgeSeconds.toFixed(0)} s old (cluster time ${l.clusterTime})`];
  if (l.behindSeconds !== null) parts.push(`${l.behindSeconds.toFixed(0)} s behind the source's cluster time`);
  if (l.oplogWindowSeconds !== null) {
    const h = l.oplogWindowSeconds / 3600;
    parts.push(`oplog window ${h >= 1 ? `${h.toFixed(1)} h` : `${Math.round(l.oplogWindowSeconds / 60)} min`}`);
    if (l.tokenAgeSeconds > 0.8 * l.oplogWindowSeconds) parts.push('WARNING: the token is near the end of the oplog; once it leaves it, the flow must start over');
  } else {
    parts.push('oplog window unknown (source not reached, or local.oplog.rs not readable)');
  }
  return parts.join(', ');
}
