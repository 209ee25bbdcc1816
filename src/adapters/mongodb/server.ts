/**
 * The driver side of the change stream (MongoStreamServer, stream/port.ts): raw `aggregate` with `$changeStream` and
 * `getMore` commands in one explicit session, so the logic sees each server reply whole, with its
 * postBatchResumeToken (the driver's ChangeStream class hides empty batches, which are the heartbeats), and values
 * deserialized with EXACT_BSON. Works the same through mongos (a sharded cluster).
 */
import { Timestamp, type ClientSession, type Document, type MongoClient } from 'mongodb';
import { EXACT_BSON } from '../../core/codec/ejson.js';
import { FerryError } from '../../core/errors.js';
import type { TableName, TableSchema } from '../../core/model.js';
import { checkMongoSource } from './preflight.js';
import type { ChangeStreamCursor, FullDocumentMode, MongoStreamServer, OpenStream } from './stream/port.js';
import type { ChangeBatch } from './stream/reader.js';

const AWAIT_MS = 1000;
const UNRECOGNIZED_STAGE = 40324;
const MAX_TIME_EXPIRED = 50;
const BATCH_SIZE = 1000;
/** How long prepare waits for the majority commit point to reach the start token (a lagging majority is an error). */
const MAJORITY_WAIT_MS = 120_000;

/**
 * One database with collections `$in` a list, or (several databases) the whole cluster filtered by namespace.
 * `splitLargeEvents: false` leaves out `$changeStreamSplitLargeEvent` (servers before 6.0.9 / 7.0 refuse the stage).
 */
export function streamCommand(opts: OpenStream, splitLargeEvents = true): { db: string; command: Document } {
  const dbs = [...new Set(opts.collections.map((c) => c.schema))];
  const stage: Document = { fullDocument: opts.fullDocument };
  if (opts.resumeAfter) stage.resumeAfter = opts.resumeAfter;
  const single = dbs.length === 1;
  if (!single) stage.allChangesForCluster = true;
  // Events of every selected collection, and the drop/rename/dropDatabase/invalidate events that stop the flow,
  // including a rename of another collection onto a selected one (`to`: events.ts stops on it).
  const colls = opts.collections.map((c) => c.name);
  const match = {
    $match: {
      $or: [
        { 'ns.db': { $in: dbs }, 'ns.coll': { $in: colls } },
        { operationType: 'rename', 'to.db': { $in: dbs }, 'to.coll': { $in: colls } },
        { operationType: { $in: ['dropDatabase', 'invalidate'] } },
      ],
    },
  };
  // $changeStreamSplitLargeEvent must be the pipeline's last stage.
  const pipeline: Document[] = [{ $changeStream: stage }, match, ...(splitLargeEvents ? [{ $changeStreamSplitLargeEvent: {} }] : [])];
  return {
    db: single ? dbs[0]! : 'admin',
    command: {
      aggregate: 1,
      pipeline,
      cursor: { batchSize: BATCH_SIZE },
    },
  };
}

/** Error 40324 "Unrecognized pipeline stage name" for the split stage: the server predates it. */
export function isUnknownSplitStage(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return !!e && e.code === UNRECOGNIZED_STAGE && /changeStreamSplitLargeEvent/.test(String(e.message));
}

class DriverCursor implements ChangeStreamCursor {
  private first: ChangeBatch | undefined;
  private closed = false;

  constructor(
    private readonly client: MongoClient,
    private readonly session: ClientSession,
    private readonly db: string,
    private id: unknown,
    private readonly collection: string,
    first: ChangeBatch,
  ) {
    this.first = first;
  }

  async next(): Promise<ChangeBatch> {
    if (this.first) {
      const f = this.first;
      this.first = undefined;
      return f;
    }
    const reply = await this.client.db(this.db).command(
      { getMore: this.id, collection: this.collection, batchSize: BATCH_SIZE, maxTimeMS: AWAIT_MS },
      { session: this.session, ...EXACT_BSON },
    );
    const cursor = reply.cursor as Document;
    this.id = cursor.id;
    return { events: (cursor.nextBatch as Document[]) ?? [], postBatchResumeToken: cursor.postBatchResumeToken as { _data: string } | undefined };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.client.db(this.db).command({ killCursors: this.collection, cursors: [this.id] }, { session: this.session }).catch(() => {});
    } finally {
      await this.session.endSession().catch(() => {});
    }
  }
}

export class DriverStreamServer implements MongoStreamServer {
  constructor(
    private readonly client: MongoClient,
    private readonly opts: { where: string; warn?: (m: string) => void },
  ) {}

  /** False once the server refused `$changeStreamSplitLargeEvent` (older than 6.0.9 / 7.0). */
  private splitLargeEvents = true;

  async open(opts: OpenStream): Promise<ChangeStreamCursor> {
    try {
      return await this.openOnce(opts);
    } catch (err) {
      if (!this.splitLargeEvents || !isUnknownSplitStage(err)) throw err;
      this.splitLargeEvents = false;
      this.opts.warn?.('this MongoDB server has no $changeStreamSplitLargeEvent (6.0.9 / 7.0 and later have it): a change event over 16 MB will stop the flow');
      return this.openOnce(opts);
    }
  }

  private async openOnce(opts: OpenStream): Promise<ChangeStreamCursor> {
    const { db, command } = streamCommand(opts, this.splitLargeEvents);
    const session = this.client.startSession();
    try {
      const reply = await this.client.db(db).command(command, { session, ...EXACT_BSON });
      const cursor = reply.cursor as Document;
      // `ns` is `<db>.$cmd.aggregate` for a database- or cluster-level stream: getMore names the part after the db.
      const ns = String(cursor.ns);
      const collection = ns.slice(ns.indexOf('.') + 1);
      return new DriverCursor(this.client, session, db, cursor.id, collection, {
        events: (cursor.firstBatch as Document[]) ?? [],
        postBatchResumeToken: cursor.postBatchResumeToken as { _data: string } | undefined,
      });
    } catch (err) {
      await session.endSession().catch(() => {});
      throw err;
    }
  }

  preflight(tables: TableSchema[]): Promise<FullDocumentMode> {
    return checkMongoSource(this.client, tables, { where: this.opts.where, cdc: true, warn: this.opts.warn });
  }

  async awaitMajority(collections: TableName[], at: { t: number; i: number }): Promise<void> {
    // One tiny read per collection: on a sharded cluster each reaches the shards holding that collection.
    for (const c of collections) {
      const wait = this.client.db(c.schema).command(
        {
          find: c.name,
          filter: {},
          projection: { _id: 1 },
          limit: 1,
          singleBatch: true,
          readConcern: { level: 'majority', afterClusterTime: new Timestamp({ t: at.t, i: at.i }) },
          maxTimeMS: MAJORITY_WAIT_MS,
        },
        EXACT_BSON,
      );
      await wait.catch((err: { code?: unknown }) => {
        if (err?.code !== MAX_TIME_EXPIRED) throw err;
        throw new FerryError(
          `${this.opts.where}: the majority-committed data did not reach the change stream's start (cluster time ${at.t}.${at.i}) within ${MAJORITY_WAIT_MS / 1000} s: a majority of the replica set members is lagging or down`,
          'check rs.status() (replication lag, unreachable members), then run again; ranges are not read until the majority has caught up, so no write before the start is missed',
        );
      });
    }
  }

  async find(table: TableName, ids: unknown[]): Promise<Document[]> {
    return this.client.db(table.schema).collection(table.name).find({ _id: { $in: ids } } as Document, EXACT_BSON).toArray();
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
