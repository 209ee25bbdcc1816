/**
 * The contract suites' harnesses for the MongoDB adapters, on a real replica set or sharded cluster named by
 * MONGODB_URL (test/ports-mongo.test.ts skips the suites, saying so, when it is unset). Contract rows `{ id, v }`
 * are documents `{ _id: Int32(id), v: <string|null> }`; images are `mongo-ejson`.
 */
import { Readable } from 'node:stream';
import { Int32, MongoClient, type Document } from 'mongodb';
import { MongoChangeSource } from '../../src/adapters/mongodb/change-source.js';
import { MongoChangeTarget } from '../../src/adapters/mongodb/change-target.js';
import { mongoClient } from '../../src/adapters/mongodb/connect.js';
import { DriverStreamServer } from '../../src/adapters/mongodb/server.js';
import { MongoSnapshotSource } from '../../src/adapters/mongodb/snapshot-source.js';
import { MongoSnapshotTarget } from '../../src/adapters/mongodb/snapshot-target.js';
import { positionOfToken } from '../../src/adapters/mongodb/stream/positions.js';
import { EXACT_BSON, MONGO_DOCS, fromCanonical } from '../../src/core/codec/ejson.js';
import { tableKey, type TableSchema } from '../../src/core/model.js';
import type { ChangeSourceHarness } from './change-source.contract.js';
import type { ChangeTargetHarness } from './change-target.contract.js';
import type { ChecksumsHarness } from './checksums.contract.js';
import type { EngineFixture, Row, RowImages, RowStreamCodecForTests, Write } from './fixture.js';
import type { SnapshotSourceHarness } from './snapshot-source.contract.js';
import type { SnapshotTargetHarness } from './snapshot-target.contract.js';

export const withDb = (url: string, db: string) => url.replace(/^(mongodb(?:\+srv)?:\/\/[^/]+)\/?[^?]*/, `$1/${db}`);

const toDoc = (r: Row): Document => ({ _id: new Int32(r.id), v: r.v });
const toRow = (d: Document): Row => ({ id: Number((d._id as Int32).valueOf()), v: (d.v as string | null) ?? null });

export const mongoImages: RowImages = {
  image: (r) => ({ _id: `{"$numberInt":"${r.id}"}`, v: r.v === null ? 'null' : JSON.stringify(r.v) }),
  key: (id) => ({ _id: `{"$numberInt":"${id}"}` }),
  decode: (image) => {
    const out: Partial<Row> = {};
    if (image._id != null) out.id = Number((fromCanonical(image._id) as Int32).valueOf());
    if ('v' in image) out.v = image.v == null ? null : (fromCanonical(image.v) as string | null);
    return out;
  },
};

export const mongoStreams: RowStreamCodecForTests = {
  formats: [MONGO_DOCS],
  async decodeStream(_t, rows) {
    const out: Row[] = [];
    for await (const d of rows.stream as AsyncIterable<Document>) out.push(toRow(d));
    return out.sort((a, b) => a.id - b.id);
  },
  encodeStream: (_t, rows) => ({ format: MONGO_DOCS, stream: Readable.from(rows.map(toDoc)) }),
};

export function mongoFixture(client: MongoClient, db: string): EngineFixture {
  const coll = (name: string) => client.db(db).collection(name);
  return {
    ...mongoImages,
    async create(name, rows) {
      await coll(name).drop().catch(() => {});
      await client.db(db).createCollection(name);
      if (rows.length) await coll(name).insertMany(rows.map(toDoc) as never[]);
    },
    async write(writes: Write[]) {
      const session = client.startSession();
      try {
        await session.withTransaction(async () => {
          for (const w of writes) {
            const c = coll(w.table);
            if (w.op === 'insert') await c.insertMany(w.rows.map(toDoc) as never[], { session });
            else if (w.op === 'update') await c.updateMany({ _id: { $in: w.ids.map((i) => new Int32(i)) } } as Document, { $set: { v: w.v } }, { session });
            else if (w.op === 'delete') await c.deleteMany({ _id: { $in: w.ids.map((i) => new Int32(i)) } } as Document, { session });
            else await c.deleteMany({}, { session });
          }
        });
      } finally {
        await session.endSession();
      }
    },
    rows: async (name) => (await coll(name).find({}, EXACT_BSON).sort({ _id: 1 }).toArray()).map(toRow),
    selection: (names) => ({ include: names.map((n) => `${db}.${n}`), exclude: [], rename: {} }),
    tableKey: (name) => `${db}.${name}`,
  };
}

export interface MongoPair {
  url: string;
  client: MongoClient;
  src: string;
  dst: string;
}

const closeAll = async (...xs: { close(): Promise<void> }[]) => {
  await Promise.allSettled(xs.map((x) => x.close()));
};

export function mongoSnapshotSourceHarness(p: MongoPair): () => Promise<SnapshotSourceHarness> {
  return async () => {
    const source = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
    const extra: MongoSnapshotSource[] = [];
    return {
      source,
      reopen: async () => {
        const s = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
        extra.push(s);
        return s;
      },
      fixture: mongoFixture(p.client, p.src),
      streams: mongoStreams,
      cleanup: () => closeAll(source, ...extra),
    };
  };
}

export function mongoSnapshotTargetHarness(p: MongoPair): () => Promise<SnapshotTargetHarness> {
  return async () => {
    const source = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
    const target = new MongoSnapshotTarget({ url: withDb(p.url, p.dst) });
    const dst = (t: TableSchema) => p.client.db(p.dst).collection(t.target.name);
    return {
      source,
      target,
      sourceFixture: mongoFixture(p.client, p.src),
      targetRows: async (t) => (await dst(t).find({}, EXACT_BSON).sort({ _id: 1 }).toArray()).map(toRow),
      targetInsert: async (t, rows) => {
        if (rows.length) await dst(t).insertMany(rows.map(toDoc) as never[]);
      },
      cleanup: () => closeAll(source, target),
    };
  };
}

export function mongoChecksumsHarness(p: MongoPair): () => Promise<ChecksumsHarness> {
  return async () => {
    const a = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
    const b = new MongoSnapshotTarget({ url: withDb(p.url, p.dst) });
    const fixtureA = mongoFixture(p.client, p.src);
    const described = async (name: string) => (await a.describe(fixtureA.selection([name])))[0]!;
    return {
      a,
      b,
      planner: a,
      fixtureA,
      loadA: async (name, rows) => {
        await fixtureA.create(name, rows);
        return described(name);
      },
      loadB: async (name, rows) => {
        const t = await described(name);
        const c = p.client.db(p.dst).collection(t.target.name);
        await c.deleteMany({});
        if (rows.length) await c.insertMany(rows.map(toDoc) as never[]);
        return t;
      },
      cleanup: () => closeAll(a, b),
    };
  };
}

export function mongoChangeSourceHarness(p: MongoPair): () => Promise<ChangeSourceHarness> {
  return async () => {
    const snapshot = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
    return {
      open: async () => new MongoChangeSource(new DriverStreamServer(mongoClient({ url: withDb(p.url, p.src) }, 'source'), { where: 'contract' })),
      fixture: mongoFixture(p.client, p.src),
      snapshot,
      streams: mongoStreams,
      cleanup: () => closeAll(snapshot),
    };
  };
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

export function mongoChangeTargetHarness(p: MongoPair): () => Promise<ChangeTargetHarness> {
  return async () => {
    const source = new MongoSnapshotSource({ url: withDb(p.url, p.src) });
    const schema = new MongoSnapshotTarget({ url: withDb(p.url, p.dst) });
    const fixture = mongoFixture(p.client, p.src);
    return {
      open: async () => new MongoChangeTarget({ url: withDb(p.url, p.dst) }),
      async table(name, rows) {
        await fixture.create(name, []);
        const [t] = await source.describe(fixture.selection([name]));
        await schema.createTables('ct', [t!]);
        const c = p.client.db(p.dst).collection(t!.target.name);
        await c.deleteMany({});
        if (rows.length) await c.insertMany(rows.map(toDoc) as never[]);
        return t!;
      },
      images: mongoImages,
      key: (t) => tableKey(t.source),
      targetRows: async (t) => (await p.client.db(p.dst).collection(t.target.name).find({}, EXACT_BSON).sort({ _id: 1 }).toArray()).map(toRow),
      position: (n) => positionOfToken({ _data: `82${hex8(1_700_000_000 + n)}00000001` }),
      cleanup: () => closeAll(source, schema),
    };
  };
}
