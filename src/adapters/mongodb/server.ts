/**
 * The driver side of the change stream (MongoStreamServer, stream/port.ts): raw `aggregate` with `$changeStream` and
 * `getMore` commands in one explicit session, so the logic sees each server reply whole, with its
 * postBatchResumeToken (the driver's ChangeStream class hides empty batches, which are the heartbeats), and values
 * deserialized with EXACT_BSON. Works the same through mongos (a sharded cluster).
 */
import type { ClientSession, Document, MongoClient } from 'mongodb';
import { EXACT_BSON } from '../../core/codec/ejson.js';
import type { TableName, TableSchema } from '../../core/model.js';
import { checkMongoSource } from './preflight.js';
import type { ChangeStreamCursor, FullDocumentMode, MongoStreamServer, OpenStream } from './stream/port.js';
import type { ChangeBatch } from './stream/reader.js';

const AWAIT_MS = 1000;
const BATCH_SIZE = 1000;

/** One database with collections `$in` a list, or (several databases) the whole cluster filtered by namespace. */
function streamCommand(opts: OpenStream): { db: string; command: Document } {
  const dbs = [...new Set(opts.collections.map((c) => c.schema))];
  const stage: Document = { fullDocument: opts.fullDocument };
  if (opts.resumeAfter) stage.resumeAfter = opts.resumeAfter;
  const single = dbs.length === 1;
  if (!single) stage.allChangesForCluster = true;
  // Events of every selected collection, and the drop/rename/dropDatabase/invalidate events that stop the flow.
  const match = {
    $match: {
      $or: [
        { 'ns.db': { $in: dbs }, 'ns.coll': { $in: opts.collections.map((c) => c.name) } },
        { operationType: { $in: ['dropDatabase', 'invalidate'] } },
      ],
    },
  };
  return {
    db: single ? dbs[0]! : 'admin',
    command: {
      aggregate: 1,
      pipeline: [{ $changeStream: stage }, match, { $changeStreamSplitLargeEvent: {} }],
      cursor: { batchSize: BATCH_SIZE },
    },
  };
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

  async open(opts: OpenStream): Promise<ChangeStreamCursor> {
    const { db, command } = streamCommand(opts);
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

  async find(table: TableName, ids: unknown[]): Promise<Document[]> {
    return this.client.db(table.schema).collection(table.name).find({ _id: { $in: ids } } as Document, EXACT_BSON).toArray();
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
