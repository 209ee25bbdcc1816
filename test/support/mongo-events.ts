/**
 * Change event documents shaped as the MongoDB server sends them (after deserialization with EXACT_BSON), and a
 * script of cursor replies to feed them to the change stream logic. This is a script of replies, not a server: it
 * answers nothing, it only hands over, in order, the batches a test wrote down.
 *
 * Shapes: https://www.mongodb.com/docs/manual/reference/change-events/ (insert, update, replace, delete, drop, rename,
 * dropDatabase, invalidate), https://www.mongodb.com/docs/manual/reference/operator/aggregation/changeStreamSplitLargeEvent/
 * (splitEvent: { fragment, of }), https://www.mongodb.com/docs/manual/changeStreams/#resume-tokens (`_id: { _data }`).
 * The resume tokens use the real KeyString layout: 0x82, cluster time seconds and increment (big-endian), then the
 * rest of a token taken from a real server (version, token type, collection UUID, document key).
 */
import { Binary, Int32, Long, Timestamp, UUID, type Document } from 'bson';
import type { ChangeBatch } from '../../src/adapters/mongodb/stream/reader.js';
import type { ChangeStreamCursor, FullDocumentMode, MongoStreamServer, OpenStream } from '../../src/adapters/mongodb/stream/port.js';
import type { TableName, TableSchema } from '../../src/core/model.js';

const REST = '2B022C0100296E5A1004A5093ABB38FE4B9EA67F01BB1A96D812463C5F6964003C5F5F5F78000004';
const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export function token(t: number, i: number, suffix = REST): { _data: string } {
  return { _data: `82${hex8(t)}${hex8(i)}${suffix}` };
}

const COLLECTION_UUID = new UUID('a5093abb-38fe-4b9e-a67f-01bb1a96d812').toBinary();

function base(op: string, t: number, i: number, ns: { db: string; coll?: string }): Document {
  return {
    _id: token(t, i),
    operationType: op,
    clusterTime: new Timestamp({ t, i }),
    wallTime: new Date(t * 1000 + i),
    collectionUUID: COLLECTION_UUID,
    ns,
  };
}

export const ev = {
  insert: (t: number, i: number, db: string, coll: string, doc: Document): Document => ({
    ...base('insert', t, i, { db, coll }),
    fullDocument: doc,
    documentKey: { _id: doc._id },
  }),
  /** With fullDocument: 'updateLookup' the server adds the current majority-committed document (or null). */
  update: (t: number, i: number, db: string, coll: string, id: unknown, updated: Document, full: Document | null): Document => ({
    ...base('update', t, i, { db, coll }),
    documentKey: { _id: id },
    updateDescription: { updatedFields: updated, removedFields: [], truncatedArrays: [] },
    fullDocument: full,
  }),
  replace: (t: number, i: number, db: string, coll: string, doc: Document): Document => ({
    ...base('replace', t, i, { db, coll }),
    documentKey: { _id: doc._id },
    fullDocument: doc,
  }),
  delete: (t: number, i: number, db: string, coll: string, id: unknown): Document => ({
    ...base('delete', t, i, { db, coll }),
    documentKey: { _id: id },
  }),
  drop: (t: number, i: number, db: string, coll: string): Document => base('drop', t, i, { db, coll }),
  rename: (t: number, i: number, db: string, coll: string, to: string): Document => ({ ...base('rename', t, i, { db, coll }), to: { db, coll: to } }),
  dropDatabase: (t: number, i: number, db: string): Document => base('dropDatabase', t, i, { db }),
  invalidate: (t: number, i: number): Document => {
    const { ns: _ns, collectionUUID: _u, ...rest } = base('invalidate', t, i, { db: '' });
    return rest;
  },
};

/** Events of one multi-document transaction share lsid and txnNumber (and, on a replica set, clusterTime). */
export function inTransaction(events: Document[], txn: number): Document[] {
  const lsid = { id: new Binary(Buffer.alloc(16, 0xab), 4), uid: new Binary(Buffer.alloc(32, 0xcd), 0) };
  return events.map((e) => ({ ...e, lsid, txnNumber: Long.fromNumber(txn) }));
}

/** Split an event into `of` fragments the way $changeStreamSplitLargeEvent does: top-level fields spread, own tokens. */
export function splitEvent(event: Document, of: number, t: number, i: number): Document[] {
  const fields = Object.keys(event).filter((k) => k !== '_id');
  const per = Math.ceil(fields.length / of);
  return Array.from({ length: of }, (_, f) => {
    const frag: Document = { _id: token(t, i, `${REST}${(f + 1).toString(16).padStart(2, '0')}`) };
    for (const k of fields.slice(f * per, (f + 1) * per)) frag[k] = event[k];
    frag.splitEvent = { fragment: new Int32(f + 1), of: new Int32(of) };
    return frag;
  });
}

/** A script of cursor replies; after its end, empty batches at the last postBatchResumeToken, `idleMs` apart. */
export class ScriptedCursor implements ChangeStreamCursor {
  private i = 0;
  closed = false;
  constructor(private readonly replies: (ChangeBatch | Error)[], private readonly idleMs = 20) {}
  async next(): Promise<ChangeBatch> {
    if (this.closed) throw new Error('cursor closed');
    const r = this.replies[this.i];
    if (r === undefined) {
      await new Promise((res) => setTimeout(res, this.idleMs));
      const last = [...this.replies].reverse().find((x): x is ChangeBatch => !(x instanceof Error));
      return { events: [], postBatchResumeToken: last?.postBatchResumeToken };
    }
    this.i++;
    if (r instanceof Error) throw r;
    return r;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** The scripted replies behind the MongoStreamServer port: each `open` takes the next cursor script. */
export class ScriptedReplies implements MongoStreamServer {
  opened: OpenStream[] = [];
  /** The port calls in order (`open`, `awaitMajority t.i`, `find`), to check what happens before what. */
  calls: string[] = [];
  constructor(private readonly cursors: ScriptedCursor[], private readonly docs: Map<string, Document[]> = new Map()) {}
  async open(opts: OpenStream): Promise<ChangeStreamCursor> {
    this.opened.push(opts);
    this.calls.push('open');
    const c = this.cursors.shift();
    if (!c) throw new Error('no more scripted cursors');
    return c;
  }
  async preflight(_tables: TableSchema[]): Promise<FullDocumentMode> {
    return 'updateLookup';
  }
  async awaitMajority(collections: TableName[], at: { t: number; i: number }): Promise<void> {
    this.calls.push(`awaitMajority ${at.t}.${at.i} ${collections.map((c) => `${c.schema}.${c.name}`).join(',')}`);
  }
  async find(table: TableName, _ids: unknown[]): Promise<Document[]> {
    this.calls.push('find');
    return this.docs.get(`${table.schema}.${table.name}`) ?? [];
  }
  async close(): Promise<void> {}
}
