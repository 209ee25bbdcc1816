/**
 * The MongoDB change stream logic (src/adapters/mongodb/stream/*, change-source.ts) on event documents shaped as the
 * server sends them (test/support/mongo-events.ts cites the pages), fed as scripted cursor replies, then through the
 * core: the streamer applies a MongoDB flow's changes to a real PostgreSQL target through the codec bridge.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Decimal128, Double, Int32, Long, ObjectId, type Document } from 'bson';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoChangeSource } from '../src/adapters/mongodb/change-source.js';
import { ChangeStreamHistoryLostError, CollectionGoneError, translateStreamError } from '../src/adapters/mongodb/stream/errors.js';
import { isUnknownSplitStage, streamCommand } from '../src/adapters/mongodb/server.js';
import { clusterTimeOfToken, compareMongoPositions, positionOfToken, type MongoPosition } from '../src/adapters/mongodb/stream/positions.js';
import { ChangeStreamReader } from '../src/adapters/mongodb/stream/reader.js';
import { PgChangeTarget } from '../src/adapters/postgres/cdc/change-target.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { mongoChangesToPg, mongoRowsToPg } from '../src/core/codec/bridge.js';
import { fromCanonical, MONGO_DOCS, toCanonical } from '../src/core/codec/ejson.js';
import { CDC_CHECKPOINT, runStreamer } from '../src/core/cdc/streamer.js';
import type { TableSchema } from '../src/core/model.js';
import type { StreamEvent } from '../src/core/ports/change-source.js';
import { classifyStreamError } from '../src/runtime/stream-errors.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';
import { ScriptedCursor, ScriptedReplies, ev, inTransaction, splitEvent, token } from './support/mongo-events.js';
import { query } from './support/pg-pair.js';

const T0 = 1_700_000_000;
const selected = new Set(['shop.orders', 'shop.users']);
const kinds = (events: StreamEvent[]) => events.map((e) => (e.kind === 'change' ? `${e.change.op}` : e.kind));

describe('positions', () => {
  it('read the cluster time out of the token and order by it, then by the token', () => {
    expect(clusterTimeOfToken({ _data: '82612E8513000000012B022C0100296E5A1004A5093ABB38FE4B9EA67F01BB1A96D812463C5F6964003C5F5F5F78000004' })).toEqual({ t: 1630438675, i: 1 });
    const a = positionOfToken(token(T0, 1));
    const b = positionOfToken(token(T0, 2));
    const c = positionOfToken(token(T0 + 1, 0));
    expect(a.clusterTime).toBe(`${T0}.1`);
    expect([c, a, b].sort(compareMongoPositions)).toEqual([a, b, c]);
    expect(compareMongoPositions(a, positionOfToken(token(T0, 1, '2B04')))).not.toBe(0);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a); // plain JSON
  });
});

describe('change events to Ferry changes', () => {
  it('insert, update (looked up), replace, delete: whole-document upserts and deletes by _id', () => {
    const r = new ChangeStreamReader({ selected });
    const id = new ObjectId('65f0a1b2c3d4e5f601234567');
    const out = r.read({
      events: [
        ev.insert(T0, 1, 'shop', 'orders', { _id: id, n: new Int32(1), price: Decimal128.fromString('9.99') }),
        ev.update(T0, 2, 'shop', 'orders', id, { n: new Int32(2) }, { _id: id, n: new Int32(2), price: Decimal128.fromString('9.99') }),
        ev.replace(T0, 3, 'shop', 'orders', { _id: id, total: new Double(1) }),
        ev.update(T0, 4, 'shop', 'orders', id, { n: new Int32(3) }, null),
        ev.delete(T0, 5, 'shop', 'orders', id),
        ev.insert(T0, 6, 'shop', 'other', { _id: new Int32(1) }),
      ],
      postBatchResumeToken: token(T0, 6),
    });
    expect(kinds(out)).toEqual(['begin', 'insert', 'commit', 'begin', 'update', 'commit', 'begin', 'update', 'commit', 'begin', 'delete', 'commit', 'heartbeat']);
    const ins = out[1] as Extract<StreamEvent, { kind: 'change' }>;
    expect(ins.change).toEqual({ op: 'insert', table: 'shop.orders', row: { _id: '{"$oid":"65f0a1b2c3d4e5f601234567"}', n: '{"$numberInt":"1"}', price: '{"$numberDecimal":"9.99"}' } });
    expect((out[7] as Extract<StreamEvent, { kind: 'change' }>).change).toMatchObject({ op: 'update', row: { total: '{"$numberDouble":"1.0"}' }, old: null });
    expect((out[10] as Extract<StreamEvent, { kind: 'change' }>).change).toEqual({ op: 'delete', table: 'shop.orders', old: { _id: '{"$oid":"65f0a1b2c3d4e5f601234567"}' } });
    expect((out[2] as { position: unknown }).position).toEqual(positionOfToken(token(T0, 1)));
    // The skipped events (a deleted document's update, another collection) end in a heartbeat past them.
    expect((out.at(-1) as { position: unknown }).position).toEqual(positionOfToken(token(T0, 6)));
  });

  it('a multi-document transaction is one source transaction, even across replies; it ends at an empty batch', () => {
    const r = new ChangeStreamReader({ selected });
    const txn = inTransaction([ev.insert(T0, 1, 'shop', 'orders', { _id: new Int32(1) }), ev.insert(T0, 1, 'shop', 'users', { _id: new Int32(2) })], 7);
    // Same clusterTime, distinct tokens (the txnOpIndex differs in the real token).
    txn[1]!._id = token(T0, 1, '2B0401');
    const a = r.read({ events: [txn[0]!], postBatchResumeToken: token(T0, 1) });
    expect(kinds(a)).toEqual(['begin', 'insert']);
    const b = r.read({ events: [txn[1]!], postBatchResumeToken: token(T0, 1, '2B0401') });
    expect(kinds(b)).toEqual(['insert']);
    const c = r.read({ events: [], postBatchResumeToken: token(T0, 2) });
    expect(kinds(c)).toEqual(['commit', 'heartbeat']);
    expect((c[0] as { position: unknown }).position).toEqual(positionOfToken(token(T0, 1, '2B0401')));
  });

  it('an event after a transaction commits it first', () => {
    const r = new ChangeStreamReader({ selected });
    const txn = inTransaction([ev.insert(T0, 1, 'shop', 'orders', { _id: new Int32(1) })], 8);
    expect(kinds(r.read({ events: [...txn, ev.delete(T0, 2, 'shop', 'orders', new Int32(1))] }))).toEqual(['begin', 'insert', 'commit', 'begin', 'delete', 'commit']);
  });

  it('fragments of a split event are reassembled, across replies, at the last fragment\'s token', () => {
    const r = new ChangeStreamReader({ selected });
    const big = ev.insert(T0, 3, 'shop', 'orders', { _id: new Int32(9), blob: 'x'.repeat(1000) });
    const parts = splitEvent(big, 3, T0, 3);
    expect(kinds(r.read({ events: parts.slice(0, 2), postBatchResumeToken: parts[1]!._id }))).toEqual([]); // no heartbeat inside an event
    const out = r.read({ events: [parts[2]!], postBatchResumeToken: parts[2]!._id });
    expect(kinds(out)).toEqual(['begin', 'insert', 'commit']);
    expect((out[1] as Extract<StreamEvent, { kind: 'change' }>).change).toMatchObject({ row: { _id: '{"$numberInt":"9"}', blob: JSON.stringify('x'.repeat(1000)) } });
    expect((out[2] as { position: unknown }).position).toEqual(positionOfToken(parts[2]!._id));
  });

  it('a fragment out of order is an error, not a half document', () => {
    const r = new ChangeStreamReader({ selected });
    const parts = splitEvent(ev.insert(T0, 3, 'shop', 'orders', { _id: new Int32(9) }), 2, T0, 3);
    expect(() => r.read({ events: [parts[1]!] })).toThrow(/out of order: fragment 2 of 2/);
  });

  it('drop, rename, dropDatabase and invalidate stop with an error naming the collection', () => {
    const stop = (e: Document) => () => new ChangeStreamReader({ selected }).read({ events: [e] });
    expect(stop(ev.drop(T0, 1, 'shop', 'orders'))).toThrow(CollectionGoneError);
    expect(stop(ev.drop(T0, 1, 'shop', 'orders'))).toThrow(/collection shop\.orders was dropped/);
    expect(stop(ev.rename(T0, 1, 'shop', 'users', 'people'))).toThrow(/shop\.users was renamed to shop\.people/);
    expect(stop(ev.dropDatabase(T0, 1, 'shop'))).toThrow(/shop\.orders, shop\.users was dropped with its database shop/);
    expect(stop(ev.invalidate(T0, 2))).toThrow(/invalidated/);
    expect(new ChangeStreamReader({ selected }).read({ events: [ev.drop(T0, 1, 'shop', 'elsewhere')] }).map((e) => e.kind)).toEqual(['heartbeat']);
    expect(classifyStreamError(new CollectionGoneError('shop.orders', 'was dropped'))).toBe('fatal');
  });
});

describe('MongoChangeSource over scripted replies', () => {
  const tables: TableSchema[] = ['orders', 'users'].map((name) => ({
    source: { schema: 'shop', name },
    target: { schema: 'shop', name },
    columns: [{ name: '_id', type: 'mongodb', nullable: false }],
    primaryKey: ['_id'],
    estimatedRows: 0,
    estimatedBytes: 0,
    extra: null,
  }));

  it('prepare takes the first reply\'s postBatchResumeToken; stream resumes after it', async () => {
    const first = new ScriptedCursor([{ events: [], postBatchResumeToken: token(T0, 5) }]);
    const second = new ScriptedCursor([{ events: [ev.insert(T0, 6, 'shop', 'users', { _id: new Int32(1) })], postBatchResumeToken: token(T0, 6) }]);
    const replies = new ScriptedReplies([first, second]);
    const source = new MongoChangeSource(replies);
    const start = await source.prepare('f', tables, { resuming: false });
    expect(start).toEqual({ position: positionOfToken(token(T0, 5)), snapshot: null });
    expect(first.closed).toBe(true);
    const ac = new AbortController();
    const got: StreamEvent[] = [];
    await source.stream('f', tables, start.position, async (e) => {
      got.push(...e);
      if (got.some((x) => x.kind === 'heartbeat')) ac.abort();
    }, ac.signal);
    expect(replies.opened[1]).toMatchObject({ resumeAfter: token(T0, 5), fullDocument: 'updateLookup' });
    expect(kinds(got)).toEqual(['begin', 'insert', 'commit', 'heartbeat']);
    expect(second.closed).toBe(true);
  });

  it('error 286 ChangeStreamHistoryLost is fatal and says the flow must start over', async () => {
    const lost = Object.assign(new Error('Executor error during getMore :: caused by :: Resume of change stream was not possible, as the resume point may no longer be in the oplog.'), { code: 286, codeName: 'ChangeStreamHistoryLost' });
    const source = new MongoChangeSource(new ScriptedReplies([new ScriptedCursor([lost])]));
    const err = await source.stream('f', tables, positionOfToken(token(T0, 1)), async () => {}, new AbortController().signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChangeStreamHistoryLostError);
    expect(String((err as Error).message)).toMatch(/no longer in the oplog/);
    expect(String((err as { hint?: string }).hint ?? '')).toMatch(/ferry reset/);
    expect(classifyStreamError(err)).toBe('fatal');
    expect(classifyStreamError(lost)).toBe('fatal');
  });
});

describe('through the core: MongoDB changes applied to PostgreSQL (codec bridge, real PostgreSQL target)', () => {
  let cluster: Cluster;
  let url: string;
  let dir: string;
  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('docs');
    url = cluster.urlFor('docs');
    dir = mkdtempSync(join(tmpdir(), 'ferry-mongo-'));
  });
  afterAll(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const users: TableSchema = {
    source: { schema: 'shop', name: 'users' },
    target: { schema: 'shop', name: 'users' },
    columns: [{ name: '_id', type: 'mongodb', nullable: false }],
    primaryKey: ['_id'],
    estimatedRows: 2,
    estimatedBytes: 100,
    extra: null,
  };

  it('snapshot documents load as (_id, doc jsonb); the stream converges them, resumed once, checkpointed by heartbeats', async () => {
    const flow = 'mongo-to-pg';
    const target = mongoRowsToPg(new PgSnapshotTarget({ url }, { connections: 2 }));
    const store = new SqliteStateStore(join(dir, 'state.db'));
    const applier = mongoChangesToPg(new PgChangeTarget({ url }, { connections: 2 }));
    try {
      await target.preflight([users], { truncate: false, resuming: false });
      await target.createTables(flow, [users]);
      // The snapshot of one range (documents as a MongoDB source reads them).
      const w = await target.openRange(flow, 'job-1', users);
      const docs: Document[] = [
        { _id: new Int32(1), name: 'ann', visits: Long.fromString('9007199254740993'), score: new Double(1) },
        { _id: new Int32(2), name: 'bob', at: new Date('2024-03-10T07:30:00.123Z') },
      ];
      await w.write({ kind: 'mongo-id', lower: null, upper: null }, { format: MONGO_DOCS, stream: Readable.from(docs) });
      await w.commit(null);
      // As a flow does before it streams: the keys (the upserts' conflict target) are built at finalize.
      await target.finalize(flow, [users], []);
      expect((await query(url, 'SELECT count(*)::int AS n FROM shop.users'))[0]).toEqual({ n: '2' });

      // The change stream, from the token taken before the snapshot: replays converge (insert of 1 again, etc.).
      const start = positionOfToken(token(T0, 1));
      await store.putCheckpoint(flow, CDC_CHECKPOINT, start);
      const txn = inTransaction([ev.update(T0, 3, 'shop', 'users', new Int32(2), { name: 'bea' }, { _id: new Int32(2), name: 'bea' }), ev.insert(T0, 3, 'shop', 'users', { _id: new Int32(3), n: Decimal128.fromString('1.10') })], 1);
      txn[1]!._id = token(T0, 3, '2B0401');
      const history = [
        { events: [ev.insert(T0, 2, 'shop', 'users', docs[0]!)], postBatchResumeToken: token(T0, 2) },
        { events: txn, postBatchResumeToken: token(T0, 3, '2B0401') },
        { events: [], postBatchResumeToken: token(T0, 4) },
      ];
      // What a server resuming after the checkpoint sends: the events after it (here: the whole history again; the
      // streamer skips what the target already applied, and the rest converges).
      const script = new ScriptedReplies([
        new ScriptedCursor([...history, Object.assign(new Error('connection 3 to 127.0.0.1:27017 closed'), { name: 'MongoNetworkError', errorLabels: ['ResumableChangeStreamError'] })]),
        new ScriptedCursor([
          ...history,
          { events: [ev.delete(T0, 5, 'shop', 'users', new Int32(1))], postBatchResumeToken: token(T0, 5) },
          { events: [], postBatchResumeToken: token(T0, 9) },
        ]),
      ]);
      const source = new MongoChangeSource(script);
      const run = async () => {
        const ac = new AbortController();
        const done = runStreamer({ source, target: applier, store }, { flow, tables: [users], batchMs: 20, signal: ac.signal });
        const stopAt = setInterval(async () => {
          const cp = await store.getCheckpoint(flow, CDC_CHECKPOINT);
          if (cp && compareMongoPositions(cp, positionOfToken(token(T0, 9))) >= 0) ac.abort();
        }, 20);
        try {
          return await done;
        } finally {
          clearInterval(stopAt);
        }
      };
      const first = await run().catch((e: unknown) => e);
      expect(classifyStreamError(first)).toBe('retry'); // a supervisor retries it
      // Whatever the lane committed before the failure (maybe nothing): the next attempt resumes from there and replays.
      const resumed = (await store.getCheckpoint(flow, CDC_CHECKPOINT)) as MongoPosition;
      expect(compareMongoPositions(resumed, start)).toBeGreaterThanOrEqual(0);
      expect(compareMongoPositions(resumed, positionOfToken(token(T0, 4)))).toBeLessThanOrEqual(0);
      await run();
      expect(script.opened[1]!.resumeAfter).toEqual(resumed.token);
      expect(await store.getCheckpoint(flow, CDC_CHECKPOINT)).toEqual(positionOfToken(token(T0, 9)));
      expect(await applier.appliedPosition(flow)).toEqual(positionOfToken(token(T0, 5)));

      const rows = await query<{ _id: string; doc: string }>(url, 'SELECT _id, doc FROM shop.users ORDER BY _id');
      expect(rows.map((r) => r._id)).toEqual(['{"$numberInt":"2"}', '{"$numberInt":"3"}']);
      const bea = fromCanonical(rows[0]!.doc) as Document;
      expect(bea.name).toBe('bea');
      // jsonb orders keys itself (field order is what the default mapping does not keep); every type is kept.
      const three = fromCanonical(rows[1]!.doc) as Document;
      expect(toCanonical(three.n)).toBe('{"$numberDecimal":"1.10"}');
      expect(toCanonical(three._id)).toBe('{"$numberInt":"3"}');
      const ann = await query<{ doc: string }>(url, `SELECT doc FROM shop.users WHERE _id = '{"$numberInt":"1"}'`);
      expect(ann).toEqual([]); // deleted by the stream
    } finally {
      await Promise.allSettled([target.close(), applier.close()]);
      await store.close();
    }
  });
  it('a declared mapping (config mongoToPg) makes typed columns, in the snapshot and in changes', async () => {
    const people: TableSchema = { ...users, source: { schema: 'shop', name: 'people' }, target: { schema: 'shop', name: 'people' } };
    const mappings = { 'shop.people': { columns: [{ column: 'email', path: 'contact.email', type: 'text' }, { column: 'visits', path: 'visits', type: 'bigint' }], keepDocument: true } };
    const target = mongoRowsToPg(new PgSnapshotTarget({ url }, { connections: 1 }), mappings);
    const applier = mongoChangesToPg(new PgChangeTarget({ url }, { connections: 1 }), mappings);
    try {
      await target.preflight([people], { truncate: false, resuming: false });
      await target.createTables('mapped', [people]);
      const w = await target.openRange('mapped', 'job-1', people);
      await w.write({ kind: 'mongo-id', lower: null, upper: null }, { format: MONGO_DOCS, stream: Readable.from([{ _id: new ObjectId('65f0a1b2c3d4e5f601234567'), contact: { email: 'a@x' }, visits: Long.fromInt(3) }]) });
      await w.commit(null);
      await target.finalize('mapped', [people], []);
      const b = await applier.begin('mapped', [people]);
      await b.apply([{ op: 'insert', table: 'shop.people', row: { _id: '{"$numberInt":"2"}', visits: '{"$numberLong":"9007199254740993"}' } }]);
      await b.commit(positionOfToken(token(T0, 1)));
      const rows = await query(url, 'SELECT _id, email, visits::text AS visits, doc IS NOT NULL AS has_doc FROM shop.people ORDER BY visits');
      expect(rows).toEqual([
        { _id: '{"$oid":"65f0a1b2c3d4e5f601234567"}', email: 'a@x', visits: '3', has_doc: 't' },
        { _id: '{"$numberInt":"2"}', email: null, visits: '9007199254740993', has_doc: 't' },
      ]);
      expect(await applier.appliedPosition('mapped')).toEqual(positionOfToken(token(T0, 1)));
    } finally {
      await Promise.allSettled([target.close(), applier.close()]);
    }
  });
});

describe('audit (issue 11 item 3): start point, stream command, stops', () => {
  const tables: TableSchema[] = ['orders', 'users'].map((name) => ({
    source: { schema: 'shop', name },
    target: { schema: 'shop', name },
    columns: [{ name: '_id', type: 'mongodb', nullable: false }],
    primaryKey: ['_id'],
    estimatedRows: 0,
    estimatedBytes: 0,
    extra: null,
  }));

  it('prepare waits until the majority snapshot includes its token\'s cluster time, before it returns (before any range is read)', async () => {
    const first = new ScriptedCursor([{ events: [], postBatchResumeToken: token(T0, 5) }]);
    const replies = new ScriptedReplies([first]);
    const start = await new MongoChangeSource(replies).prepare('f', tables, { resuming: false });
    expect(start.position).toEqual(positionOfToken(token(T0, 5)));
    expect(replies.calls).toEqual(['open', `awaitMajority ${T0}.5 shop.orders,shop.users`]);
  });

  it('the stream command: one database stream filtered by collection, stops included, the split stage last (or left out)', () => {
    const { db, command } = streamCommand({ collections: tables.map((t) => t.source), fullDocument: 'updateLookup', resumeAfter: token(T0, 1) });
    expect(db).toBe('shop');
    const pipeline = command.pipeline as Document[];
    expect(pipeline[0]).toEqual({ $changeStream: { fullDocument: 'updateLookup', resumeAfter: token(T0, 1) } });
    expect(pipeline.at(-1)).toEqual({ $changeStreamSplitLargeEvent: {} });
    expect((pipeline[1]!.$match as { $or: Document[] }).$or).toContainEqual({ operationType: 'rename', 'to.db': { $in: ['shop'] }, 'to.coll': { $in: ['orders', 'users'] } });
    const several = streamCommand({ collections: [{ schema: 'shop', name: 'orders' }, { schema: 'crm', name: 'people' }], fullDocument: 'required' }, false);
    expect(several.db).toBe('admin');
    expect((several.command.pipeline as Document[])[0]).toEqual({ $changeStream: { fullDocument: 'required', allChangesForCluster: true } });
    expect(JSON.stringify(several.command.pipeline)).not.toMatch(/SplitLargeEvent/);
  });

  it('a server without $changeStreamSplitLargeEvent is recognised; an event over 16 MB there stops the flow with the fix', () => {
    // Error codes: https://www.mongodb.com/docs/manual/reference/error-codes/ (40324 unrecognized stage, 10334 BSONObjectTooLarge).
    const old = Object.assign(new Error("Unrecognized pipeline stage name: '$changeStreamSplitLargeEvent'"), { code: 40324, codeName: 'Location40324' });
    expect(isUnknownSplitStage(old)).toBe(true);
    expect(isUnknownSplitStage(Object.assign(new Error("Unrecognized pipeline stage name: '$foo'"), { code: 40324 }))).toBe(false);
    const big = Object.assign(new Error('Executor error during getMore :: caused by :: BSONObj size: 17000000 (0x1036640) is invalid. Size must be between 0 and 16793600(16MB)'), { code: 10334, codeName: 'BSONObjectTooLarge' });
    const err = translateStreamError(big);
    expect(String((err as Error).message)).toMatch(/over 16 MB/);
    expect(classifyStreamError(err)).toBe('fatal');
  });

  it('a rename of another collection onto a selected one ($out, dropTarget) stops naming the selected collection', () => {
    // The rename event of https://www.mongodb.com/docs/manual/reference/change-events/rename/: ns is the old name, `to` the new.
    const onto = ev.rename(T0, 1, 'shop', 'tmp.agg_out.5f1c', 'orders');
    expect(() => new ChangeStreamReader({ selected }).read({ events: [onto] })).toThrow(/collection shop\.orders was replaced by shop\.tmp\.agg_out\.5f1c renamed onto it/);
    expect(new ChangeStreamReader({ selected }).read({ events: [ev.rename(T0, 1, 'shop', 'a', 'b')] }).map((e) => e.kind)).toEqual(['heartbeat']);
  });
});
