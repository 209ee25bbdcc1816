/**
 * MongoDB preflight decisions on replies shaped like the server's (hello: https://www.mongodb.com/docs/manual/reference/command/hello/,
 * connectionStatus with showPrivileges: https://www.mongodb.com/docs/manual/reference/command/connectionStatus/,
 * listCollections options: changeStreamPreAndPostImages), and the mongodb:// config.
 */
import { describe, expect, it } from 'vitest';
import { checkOplogWindow, deploymentOf, fullDocumentMode, missingPrivileges, postImageMode, requireChangeStreams, requiredPrivileges } from '../src/adapters/mongodb/preflight.js';
import { databaseOfUrl, mongoClient } from '../src/adapters/mongodb/connect.js';
import { rangesFromSample, rangeFilter, typedRanges } from '../src/adapters/mongodb/ranges.js';
import { bracketOf, splitKind } from '../src/adapters/mongodb/snapshot-source.js';
import { sameCollation } from '../src/adapters/mongodb/snapshot-target.js';
import { describeEndpoint } from '../src/config/endpoint.js';
import { parseConfig } from '../src/config/load.js';
import { engineOf } from '../src/config/schema.js';
import { Decimal128, Double, Int32, Long, ObjectId } from 'bson';
import type { TableSchema } from '../src/core/model.js';

const t = (db: string, coll: string): TableSchema => ({ source: { schema: db, name: coll }, target: { schema: db, name: coll }, columns: [], primaryKey: ['_id'], estimatedRows: 0, estimatedBytes: 0, extra: null });

describe('deployment', () => {
  it('replica set, mongos, standalone; a standalone cannot stream', () => {
    expect(deploymentOf({ isWritablePrimary: true, setName: 'rs0', hosts: ['h:27017'], ok: 1 })).toBe('replicaSet');
    expect(deploymentOf({ isWritablePrimary: true, msg: 'isdbgrid', ok: 1 })).toBe('sharded');
    expect(deploymentOf({ isWritablePrimary: true, ok: 1 })).toBe('standalone');
    expect(() => requireChangeStreams('standalone', 'h:27017/shop')).toThrow(/standalone mongod: change streams need a replica set/);
    expect(() => requireChangeStreams('sharded', 'x')).not.toThrow();
  });

  it('the oplog window must outlast the snapshot', () => {
    expect(() => checkOplogWindow(3600, 3000)).toThrow(/oplog holds about 60 min .* about 50 min/);
    expect(() => checkOplogWindow(86_400, 3000)).not.toThrow();
  });
});

describe('privileges from connectionStatus', () => {
  const status = (privs: unknown[]) => ({ authInfo: { authenticatedUsers: [{ user: 'ferry', db: 'admin' }], authenticatedUserRoles: [], authenticatedUserPrivileges: privs }, ok: 1 });
  it('names each collection and action missing; authentication off needs none', () => {
    const tables = [t('shop', 'orders'), t('shop', 'users')];
    const cdc = requiredPrivileges(tables, true);
    expect(missingPrivileges({ authInfo: { authenticatedUsers: [], authenticatedUserPrivileges: [] }, ok: 1 }, cdc)).toEqual([]);
    // The built-in `read` role on the database: what the `read` role grants on { db: 'shop', collection: '' }.
    expect(missingPrivileges(status([{ resource: { db: 'shop', collection: '' }, actions: ['find', 'changeStream', 'listCollections', 'listIndexes'] }]), cdc)).toEqual([]);
    expect(missingPrivileges(status([{ resource: { anyResource: true }, actions: ['find', 'changeStream', 'listCollections', 'listIndexes'] }]), cdc)).toEqual([]);
    expect(
      missingPrivileges(status([{ resource: { db: 'shop', collection: '' }, actions: ['listCollections'] }, { resource: { db: 'shop', collection: 'orders' }, actions: ['find', 'listIndexes'] }]), requiredPrivileges(tables, false)),
    ).toEqual(['shop.users: find', 'shop.users: listIndexes']);
  });

  it('a change stream needs changeStream and find on the database it watches, or on every database', () => {
    // Privileges on each collection read them, but do not open the database-level stream server.ts opens.
    const perCollection = [
      { resource: { db: 'shop', collection: '' }, actions: ['listCollections'] },
      { resource: { db: 'shop', collection: 'orders' }, actions: ['find', 'listIndexes', 'changeStream'] },
      { resource: { db: 'shop', collection: 'users' }, actions: ['find', 'listIndexes', 'changeStream'] },
    ];
    const tables = [t('shop', 'orders'), t('shop', 'users')];
    expect(missingPrivileges(status(perCollection), requiredPrivileges(tables, false))).toEqual([]);
    expect(missingPrivileges(status(perCollection), requiredPrivileges(tables, true))).toEqual([
      'database shop (the change stream watches the database): changeStream',
      'database shop (the change stream watches the database): find',
    ]);
    // Two databases: a cluster-wide stream, which `read` on each database does not allow; readAnyDatabase does.
    const two = [t('shop', 'orders'), t('crm', 'people')];
    const readEach = ['shop', 'crm'].map((db) => ({ resource: { db, collection: '' }, actions: ['find', 'changeStream', 'listCollections', 'listIndexes'] }));
    expect(missingPrivileges(status(readEach), requiredPrivileges(two, true))).toEqual([
      'every database (the collections span several, so the change stream watches the whole deployment): changeStream',
      'every database (the collections span several, so the change stream watches the whole deployment): find',
    ]);
    const readAny = [{ resource: { db: '', collection: '' }, actions: ['find', 'changeStream', 'listCollections', 'listIndexes'] }];
    expect(missingPrivileges(status(readAny), requiredPrivileges(two, true))).toEqual([]);
  });

  it('post-images when every collection has them, else updateLookup', () => {
    const on = { changeStreamPreAndPostImages: { enabled: true } };
    expect(fullDocumentMode(new Map([['a.b', on], ['a.c', on]]))).toBe('required');
    expect(fullDocumentMode(new Map<string, Record<string, unknown>>([['a.b', on], ['a.c', {}]]))).toBe('updateLookup');
  });

  it('post-images that expire before the stream resumes fall back to updateLookup, saying so', () => {
    // getClusterParameter changeStreamOptions: { preAndPostImages: { expireAfterSeconds: 'off' | <seconds> } }
    const warnings: string[] = [];
    expect(postImageMode('required', 'off', 3600, (m) => warnings.push(m))).toBe('required');
    expect(postImageMode('required', undefined, 3600, (m) => warnings.push(m))).toBe('required');
    expect(postImageMode('required', 86_400, 3600, (m) => warnings.push(m))).toBe('required');
    expect(warnings).toEqual([]);
    expect(postImageMode('required', 600, 3600, (m) => warnings.push(m))).toBe('updateLookup');
    expect(warnings[0]).toMatch(/post-images expire after 600 s .* updateLookup instead/);
    expect(postImageMode('updateLookup', 1, 3600)).toBe('updateLookup');
  });
});

describe('ranges', () => {
  it('boundaries from a sorted sample, covering everything, as canonical EJSON bounds', () => {
    const ids = Array.from({ length: 100 }, (_, i) => new Int32(i));
    const r = rangesFromSample(ids, 4);
    expect(r.map((x) => [x.lower, x.upper])).toEqual([
      [null, { $numberInt: '25' }],
      [{ $numberInt: '25' }, { $numberInt: '50' }],
      [{ $numberInt: '50' }, { $numberInt: '75' }],
      [{ $numberInt: '75' }, null],
    ]);
    const f = rangeFilter({ kind: 'mongo-id', lower: { $oid: '65f0a1b2c3d4e5f601234567' }, upper: null });
    expect((f._id as { $gte: unknown }).$gte).toBeInstanceOf(ObjectId);
    expect(rangeFilter({ kind: 'mongo-id', lower: null, upper: null })).toEqual({});
  });

  it('small-collection guard, one range for mixed _id types, sampled quantiles otherwise', () => {
    // Comparison/Sort Order: https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/
    expect(splitKind(1000, 1000, undefined, undefined)).toBe('one'); // no sample for a collection of one range
    expect(splitKind(5000, 1000, new Int32(1), 'one')).toBe('whole');
    expect(splitKind(5000, 1000, new Int32(1), Long.fromNumber(9e15))).toBe('sample'); // numbers compare across types
    expect(splitKind(5000, 1000, new Double(0.5), Decimal128.fromString('7'))).toBe('sample');
    expect(splitKind(5000, 1000, new ObjectId(), new ObjectId())).toBe('sample');
    expect(splitKind(5000, 1000, undefined, undefined)).toBe('whole'); // emptied since it was counted
    expect(bracketOf(new Date(0))).toBe('date');
    expect(bracketOf({ a: 1 })).toBe('object');
    // Mixed types: a range per bracket present (bounds and cursors stay inside it by type bracketing), then the rest.
    const typed = typedRanges(['number', 'objectId']);
    expect(typed.map((x) => rangeFilter(x))).toEqual([
      { _id: { $type: ['double', 'int', 'long', 'decimal'] } },
      { _id: { $type: ['objectId'] } },
      { _id: { $not: { $type: expect.arrayContaining(['double', 'string', 'objectId', 'date', 'maxKey']) } } },
    ]);
    expect(typed.at(-1)!.whole).toBe(true);
    const f2 = rangeFilter({ ...typed[0]!, lower: { $numberInt: '5' } });
    expect(Object.keys(f2._id as object)).toEqual(['$type', '$gte']);
    // Duplicate sampled _ids ($sample may return a document twice) give no empty range.
    const r = rangesFromSample([1, 1, 1, 2, 3, 3].map((i) => new Int32(i)), 4);
    expect(r.every((x) => JSON.stringify(x.lower) !== JSON.stringify(x.upper))).toBe(true);
  });
});

describe('target collation', () => {
  it('the target collection must order string _ids like the source (listCollections options.collation)', () => {
    // https://www.mongodb.com/docs/manual/reference/collation/ (the fields listCollections reports)
    const en2 = { locale: 'en', caseLevel: false, caseFirst: 'off', strength: 2, numericOrdering: false, alternate: 'non-ignorable', maxVariable: 'punct', normalization: false, backwards: false, version: '57.1' };
    expect(sameCollation(undefined, undefined)).toBe(true);
    expect(sameCollation(undefined, { locale: 'simple' })).toBe(true);
    expect(sameCollation(en2, { locale: 'en', strength: new Int32(2) })).toBe(true); // from the source's canonical EJSON
    expect(sameCollation(en2, { ...en2, strength: 3 })).toBe(false);
    expect(sameCollation(en2, undefined)).toBe(false);
    expect(sameCollation(undefined, en2)).toBe(false);
  });
});

describe('clients: majority reads and majority-acknowledged writes', () => {
  it('every collection of a Ferry client reads majority-committed data and writes with w: majority (no connection made)', async () => {
    for (const role of ['source', 'target'] as const) {
      const c = mongoClient({ url: 'mongodb://127.0.0.1:9/shop?replicaSet=rs0' }, role);
      try {
        const coll = c.db('shop').collection('orders');
        expect(coll.readConcern?.level).toBe('majority');
        expect(coll.writeConcern?.w).toBe('majority');
        expect(c.db('_ferry').collection('_ferry').writeConcern?.w).toBe('majority');
      } finally {
        await c.close();
      }
    }
  });
});

describe('config: mongodb:// endpoints', () => {
  const base = { include: ['shop.*'] };
  it('accepts mongodb:// and mongodb+srv:// URLs and names them without secrets', () => {
    const c = parseConfig({ ...base, source: { url: 'mongodb://u:secret@h1:27017,h2:27017/shop?replicaSet=rs0' }, target: { url: 'postgres://p:q@pg:5432/dst' } });
    expect(engineOf(c.source)).toBe('mongodb');
    expect(engineOf(c.target)).toBe('postgres');
    expect(describeEndpoint(c.source, { withUser: false, unparseable: '?' })).toBe('h1:27017,h2:27017/shop');
    expect(describeEndpoint(c.source, { withUser: true, unparseable: '?' })).toBe('u@h1:27017,h2:27017/shop');
    expect(describeEndpoint(c.target, { withUser: false, unparseable: '?' })).toBe('pg:5432/dst');
    expect(databaseOfUrl('mongodb://h/shop?replicaSet=rs0')).toBe('shop');
    expect(databaseOfUrl('mongodb+srv://cluster.example.net/?retryWrites=true')).toBeUndefined();
    parseConfig({ ...base, source: { url: 'postgres://a@b/c' }, target: { url: 'mongodb+srv://u:p@cluster0.example.net/app' } });
  });

  it('mongoToPg: declared columns for MongoDB → PostgreSQL, checked', () => {
    const c = parseConfig({ ...base, source: { url: 'mongodb://h/shop' }, target: { url: 'postgres://a@b/c' }, mongoToPg: { 'shop.users': { columns: [{ column: 'email', path: 'contact.email', type: 'text' }] } } });
    expect(c.mongoToPg['shop.users']).toEqual({ columns: [{ column: 'email', path: 'contact.email', type: 'text' }], keepDocument: false });
    expect(() => parseConfig({ ...base, source: { url: 'postgres://a@b/c' }, target: { url: 'postgres://a@b/d' }, mongoToPg: { 'shop.users': { columns: [{ column: 'e', path: 'e', type: 'text' }] } } })).toThrow(/mongoToPg: `mongoToPg` maps MongoDB documents/);
    expect(() => parseConfig({ ...base, source: { url: 'mongodb://h/shop' }, target: { url: 'postgres://a@b/c' }, mongoToPg: { 'shop.users': { columns: [{ column: '_id', path: 'x', type: 'text' }] } } })).toThrow(/Ferry's own columns/);
  });

  it('refuses PostgreSQL-only fields and malformed URLs with the field named', () => {
    expect(() => parseConfig({ ...base, source: { url: 'mongodb://h/shop', user: 'x' }, target: { url: 'postgres://a@b/c' } })).toThrow(/source: a mongodb:\/\/ endpoint takes everything from its `url`/);
    expect(() => parseConfig({ ...base, source: { url: 'mongodb:///nohost' }, target: { url: 'postgres://a@b/c' } })).toThrow(/source: expected mongodb:\/\/\[user:pass@\]host/);
  });
});
