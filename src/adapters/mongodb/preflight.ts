/**
 * What a MongoDB source must offer before a flow starts, each failure saying how to fix it. The decisions are pure
 * functions of the server's replies (hello, connectionStatus, the oplog's ends, listCollections), so they are
 * tested on replies shaped like the server's; `checkMongoSource` runs the commands.
 */
import type { Db, MongoClient, Document } from 'mongodb';
import { PreflightError } from '../../core/errors.js';
import { tableKey, type TableSchema } from '../../core/model.js';
import type { FullDocumentMode } from './stream/port.js';

export type Deployment = 'replicaSet' | 'sharded' | 'standalone';

/** From the `hello` reply: mongos says `msg: 'isdbgrid'`, a replica set member names its `setName`. */
export function deploymentOf(hello: Document): Deployment {
  if (hello.msg === 'isdbgrid') return 'sharded';
  if (typeof hello.setName === 'string') return 'replicaSet';
  return 'standalone';
}

export function requireChangeStreams(d: Deployment, where: string): void {
  if (d === 'standalone') {
    throw new PreflightError(
      `${where} is a standalone mongod: change streams need a replica set (or a sharded cluster through mongos)`,
      'restart it as a one-member replica set: `mongod --replSet rs0 …`, then `mongosh --eval "rs.initiate()"`, and add `?replicaSet=rs0` to the URL',
    );
  }
}

/**
 * The oplog must hold at least the snapshot's estimated duration (plus margin): the stream resumes from a token
 * taken before the first range is read, and error 286 ends the flow if that point has left the oplog.
 */
export function checkOplogWindow(windowSeconds: number, estimatedSnapshotSeconds: number): void {
  const needed = Math.ceil(estimatedSnapshotSeconds * 2 + 600);
  if (windowSeconds < needed) {
    throw new PreflightError(
      `the source's oplog holds about ${Math.round(windowSeconds / 60)} min of history; the snapshot is estimated to take about ${Math.round(estimatedSnapshotSeconds / 60)} min, and the stream must resume from before it (needed: ${Math.round(needed / 60)} min)`,
      'grow the oplog (`db.adminCommand({ replSetResizeOplog: 1, size: <MB> })`) or set a minimum retention (`replSetResizeOplog` with `minRetentionHours`), then run again',
    );
  }
}

type Privilege = { resource: { db?: string; collection?: string; cluster?: boolean; anyResource?: boolean }; actions: string[] };

/** A privilege the flow needs: `collection: ''` is a database resource, `db: ''` too is every database. */
export type NeededPrivilege = { db: string; collection: string; action: string };

/**
 * What the flow's reads and its change stream need (https://www.mongodb.com/docs/manual/reference/resource-document/,
 * https://www.mongodb.com/docs/manual/changeStreams/#access-control): `find` and `listIndexes` on each collection,
 * `listCollections` on each database; with a change stream, `changeStream` and `find` on the resource the stream is
 * opened on: the database when every collection is in one (server.ts opens a database stream filtered by
 * collection), every database (`{ db: "", collection: "" }`) when they span several (a cluster-wide stream).
 * Privileges on the collections alone do not open a database or cluster stream.
 */
export function requiredPrivileges(tables: TableSchema[], cdc: boolean): NeededPrivilege[] {
  const out: NeededPrivilege[] = [];
  const dbs = [...new Set(tables.map((t) => t.source.schema))];
  for (const db of dbs) out.push({ db, collection: '', action: 'listCollections' });
  for (const t of tables) for (const action of ['find', 'listIndexes']) out.push({ db: t.source.schema, collection: t.source.name, action });
  if (cdc && dbs.length > 0) {
    const db = dbs.length === 1 ? dbs[0]! : '';
    for (const action of ['changeStream', 'find']) out.push({ db, collection: '', action });
  }
  return out;
}

function describeNeed(n: NeededPrivilege): string {
  if (n.db === '') return `every database (the collections span several, so the change stream watches the whole deployment): ${n.action}`;
  if (n.collection === '') return `database ${n.db}${n.action === 'listCollections' ? '' : ' (the change stream watches the database)'}: ${n.action}`;
  return `${n.db}.${n.collection}: ${n.action}`;
}

/**
 * The needed privileges missing from a `connectionStatus` (showPrivileges) reply, described; [] when authentication
 * is off. A privilege's resource covers a need when it is `anyResource`, or its db and collection are each '' (all)
 * or the same as the need's (a need on '' is covered only by '').
 */
export function missingPrivileges(status: Document, needs: NeededPrivilege[]): string[] {
  const info = (status.authInfo ?? {}) as { authenticatedUsers?: unknown[]; authenticatedUserPrivileges?: Privilege[] };
  if (!info.authenticatedUsers?.length) return [];
  const privs = info.authenticatedUserPrivileges ?? [];
  const covers = (have: string | undefined, need: string) => have !== undefined && (have === '' || have === need);
  const has = (n: NeededPrivilege) =>
    privs.some((p) => p.actions.includes(n.action) && (p.resource.anyResource === true || (covers(p.resource.db, n.db) && covers(p.resource.collection, n.collection))));
  return needs.filter((n) => !has(n)).map(describeNeed);
}

/** `required` post-images when every selected collection has changeStreamPreAndPostImages; `updateLookup` otherwise. */
export function fullDocumentMode(options: Map<string, Document>): FullDocumentMode {
  const all = [...options.values()];
  return all.length > 0 && all.every((o) => (o.changeStreamPreAndPostImages as { enabled?: boolean } | undefined)?.enabled === true) ? 'required' : 'updateLookup';
}

/**
 * Post-images (`fullDocument: 'required'`) are kept only `expireAfterSeconds` (cluster parameter changeStreamOptions,
 * https://www.mongodb.com/docs/manual/reference/command/getClusterParameter/), besides the oplog's own window. If
 * they expire before the stream resumes after the snapshot, the server fails the stream; `updateLookup` then is the
 * safe mode (it reads the current document instead). `expire` is the parameter (`'off'` or seconds), or undefined
 * when it could not be read.
 */
export function postImageMode(mode: FullDocumentMode, expire: unknown, estimatedSnapshotSeconds: number, warn?: (m: string) => void): FullDocumentMode {
  if (mode !== 'required' || typeof expire !== 'number') return mode;
  const needed = Math.ceil(estimatedSnapshotSeconds * 2 + 600);
  if (expire >= needed) return mode;
  warn?.(
    `post-images expire after ${expire} s (changeStreamOptions.preAndPostImages.expireAfterSeconds), sooner than the ${needed} s the snapshot and resume may take: updates are read with updateLookup instead (raise expireAfterSeconds to use the post-images)`,
  );
  return 'updateLookup';
}

async function postImageExpiry(client: MongoClient): Promise<unknown> {
  const reply = await client.db('admin').command({ getClusterParameter: 'changeStreamOptions' });
  const p = (reply.clusterParameters as Document[] | undefined)?.[0];
  return (p?.preAndPostImages as { expireAfterSeconds?: unknown } | undefined)?.expireAfterSeconds;
}

/** Rough copy speed for the oplog-window estimate (bytes/s); deliberately modest. */
const COPY_BYTES_PER_SECOND = 20 << 20;

async function oplogWindowSeconds(client: MongoClient): Promise<number | undefined> {
  const oplog = client.db('local').collection('oplog.rs');
  const [first] = await oplog.find({}, { projection: { ts: 1 } }).sort({ $natural: 1 }).limit(1).toArray();
  const [last] = await oplog.find({}, { projection: { ts: 1 } }).sort({ $natural: -1 }).limit(1).toArray();
  // A BSON Timestamp: `t` is its seconds.
  const secs = (d: Document | undefined) => (d?.ts as { t?: number } | undefined)?.t;
  const a = secs(first);
  const b = secs(last);
  return a === undefined || b === undefined ? undefined : b - a;
}

export async function checkMongoSource(client: MongoClient, tables: TableSchema[], opts: { where: string; cdc: boolean; warn?: (m: string) => void }): Promise<FullDocumentMode> {
  const admin: Db = client.db('admin');
  const hello = await admin.command({ hello: 1 });
  const deployment = deploymentOf(hello);
  if (opts.cdc) requireChangeStreams(deployment, opts.where);
  const status = await admin.command({ connectionStatus: 1, showPrivileges: true });
  const missing = missingPrivileges(status, requiredPrivileges(tables, opts.cdc));
  if (missing.length) {
    const several = new Set(tables.map((t) => t.source.schema)).size > 1;
    throw new PreflightError(
      `the source user lacks privileges: ${missing.slice(0, 10).join('; ')}${missing.length > 10 ? '; …' : ''}`,
      several && opts.cdc
        ? 'the flow spans several databases: grant the built-in `readAnyDatabase` role (find and changeStream on every database), e.g. db.getSiblingDB("admin").grantRolesToUser(user, ["readAnyDatabase"]), or run one flow per database'
        : 'grant it the built-in `read` role on the database (find, listIndexes, listCollections, changeStream), e.g. db.grantRolesToUser(user, [{ role: "read", db: "<db>" }])',
    );
  }
  const bytes = tables.reduce((n, t) => n + Math.max(0, t.estimatedBytes), 0);
  if (opts.cdc && deployment === 'replicaSet') {
    const window = await oplogWindowSeconds(client).catch(() => undefined);
    if (window !== undefined) checkOplogWindow(window, bytes / COPY_BYTES_PER_SECOND);
    else opts.warn?.('could not read the oplog window (local.oplog.rs): make sure it is longer than the snapshot will take');
  } else if (opts.cdc) {
    opts.warn?.('sharded cluster: check that every shard\'s oplog window is longer than the snapshot will take');
  }
  const options = new Map<string, Document>();
  for (const t of tables) {
    const [info] = await client.db(t.source.schema).listCollections({ name: t.source.name }).toArray();
    options.set(tableKey(t.source), ((info as { options?: Document } | undefined)?.options ?? {}) as Document);
  }
  const mode = fullDocumentMode(options);
  // An unreadable parameter (before 6.0, or no privilege to read it): the default, 'off' (kept as long as the oplog).
  return postImageMode(mode, mode === 'required' ? await postImageExpiry(client).catch(() => undefined) : undefined, bytes / COPY_BYTES_PER_SECOND, opts.warn);
}
