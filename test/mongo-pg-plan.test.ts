/**
 * PostgreSQL → MongoDB, what is decided from the plan (real introspection of embedded PostgreSQL, no MongoDB server):
 * - the indexes and unique constraints translated to MongoDB index specs (pg-to-mongo-indexes.ts), and a warning
 *   naming each one that is not built and why;
 * - the tables the mapping cannot hold (array / jsonb keys, `$`-prefixed columns, `_id` and `__micros` collisions,
 *   no key) refused by the bridged MongoDB target's preflight, before it connects, naming table and column.
 * The MongoDB side (createIndexes at finalize) runs only against a server: test/mongo-adapters.test.ts with MONGODB_URL.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoSnapshotTarget } from '../src/adapters/mongodb/snapshot-target.js';
import { rawTypes } from '../src/adapters/postgres/connect.js';
import { PgSnapshotSource } from '../src/adapters/postgres/snapshot-source.js';
import { pgRowsToMongo } from '../src/core/codec/bridge.js';
import { pgToMongoProblems, refuseUnmappable } from '../src/core/codec/pg-to-mongo-checks.js';
import { pgIndexesToMongo } from '../src/core/codec/pg-to-mongo-indexes.js';
import { PreflightError } from '../src/core/errors.js';
import type { TableSchema } from '../src/core/model.js';
import { startCluster, type Cluster } from '../src/embedded/cluster.js';

const DDL = `
CREATE SCHEMA ix;
CREATE TABLE ix.t (id int PRIMARY KEY, a int NOT NULL, b text, c timestamptz, d numeric, e int[], j jsonb, f boolean,
  "Odd ""Name""" int, "x.y" int, v varchar(10), r int4range, "1" int);
CREATE INDEX t_a ON ix.t (a);
CREATE INDEX t_ab_desc ON ix.t (a DESC, b NULLS FIRST);
CREATE UNIQUE INDEX t_b_uq ON ix.t (b);
CREATE UNIQUE INDEX t_b_nnd ON ix.t (b) NULLS NOT DISTINCT;
CREATE INDEX t_c ON ix.t (c DESC);
ALTER TABLE ix.t ADD CONSTRAINT t_ad_key UNIQUE (a, d);
ALTER TABLE ix.t ADD CONSTRAINT t_def UNIQUE (f) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE ix.t ADD CONSTRAINT t_excl EXCLUDE USING gist (r WITH &&);
CREATE INDEX t_lower ON ix.t (lower(b));
CREATE INDEX t_expr2 ON ix.t ((a + 1));
CREATE INDEX t_e ON ix.t (e);
CREATE INDEX t_gin ON ix.t USING gin (j);
CREATE INDEX t_hash ON ix.t USING hash (a);
CREATE INDEX t_part ON ix.t (a) WHERE f;
CREATE INDEX t_part_not ON ix.t (a) WHERE NOT f;
CREATE INDEX t_part2 ON ix.t (b) WHERE a > 10 AND b IS NOT NULL;
CREATE INDEX t_part3 ON ix.t (a) WHERE v = 'it''s open';
CREATE INDEX t_part_bad ON ix.t (a) WHERE length(b) > 3;
CREATE INDEX t_part_null ON ix.t (a) WHERE b IS NULL;
CREATE INDEX t_odd ON ix.t ("Odd ""Name""", b COLLATE "C" text_pattern_ops DESC);
CREATE INDEX t_dot ON ix.t ("x.y");
CREATE INDEX t_incl ON ix.t (a) INCLUDE (b);
CREATE INDEX t_pk ON ix.t (id);
CREATE INDEX t_num ON ix.t ("1", a);
CREATE TABLE ix.comp (k1 int, k2 text, x int, ts timestamp, PRIMARY KEY (k1, k2));
CREATE INDEX comp_k2 ON ix.comp (k2, x);
CREATE UNIQUE INDEX comp_ts ON ix.comp (ts, k1);

CREATE SCHEMA bad;
CREATE DOMAIN bad.intarr AS int[];
CREATE TABLE bad.arr (k int[] PRIMARY KEY, v text);
CREATE TABLE bad.dom (k bad.intarr PRIMARY KEY);
CREATE TABLE bad.jb (k jsonb PRIMARY KEY);
CREATE TABLE bad.comp (a int, b text[], PRIMARY KEY (a, b));
CREATE TABLE bad.cols (id int PRIMARY KEY, "$x" int, "_id" int, ts timestamptz, ts__micros int);
CREATE TABLE bad.keyless (a int);
CREATE TABLE bad.tskey (k timestamptz PRIMARY KEY, v int);
CREATE TABLE bad.tskey2 (id int, at timestamp(6), PRIMARY KEY (id, at));
CREATE TABLE ix.tsms (k timestamp(3) with time zone PRIMARY KEY, at timestamptz);
`;

describe('PostgreSQL → MongoDB from the plan: indexes and refusals (real introspection)', () => {
  let cluster: Cluster;
  let tables: TableSchema[];
  const table = (name: string) => tables.find((t) => `${t.source.schema}.${t.source.name}` === name)!;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createDatabase('pgplan');
    const url = cluster.urlFor('pgplan');
    const client = new pg.Client({ connectionString: url, types: rawTypes });
    await client.connect();
    await client.query(DDL).finally(() => client.end());
    const source = new PgSnapshotSource({ url }, { connections: 1 });
    try {
      tables = await source.describe({ include: ['ix.*', 'bad.*'], exclude: [], rename: {} });
    } finally {
      await source.close();
    }
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('btree indexes and unique constraints over columns become MongoDB specs in the mapped field names', () => {
    const t = table('ix.t');
    const { indexes, warnings } = pgIndexesToMongo(t);
    const by = new Map(indexes.map((i) => [i.name, i]));
    expect(by.get('t_a')).toEqual({ name: 't_a', key: [['a', 1]] });
    expect(by.get('t_ab_desc')).toEqual({ name: 't_ab_desc', key: [['a', -1], ['b', 1]] });
    // PostgreSQL lets NULLs repeat in a unique index: MongoDB indexes only the documents where b is not null.
    expect(by.get('t_b_uq')).toEqual({ name: 't_b_uq', key: [['b', 1]], unique: true, partialFilterExpression: { b: { $type: 'string' } } });
    expect(by.get('t_b_nnd')).toEqual({ name: 't_b_nnd', key: [['b', 1]], unique: true });
    // a timestamp carries its sub-millisecond digits in <col>__micros: both are keys, same direction
    expect(by.get('t_c')).toEqual({ name: 't_c', key: [['c', -1], ['c__micros', -1]] });
    expect(by.get('t_ad_key')).toEqual({ name: 't_ad_key', key: [['a', 1], ['d', 1]], unique: true, partialFilterExpression: { d: { $type: ['decimal', 'string'] } } });
    expect(by.get('t_def')).toEqual({ name: 't_def', key: [['f', 1]] });
    expect(by.get('t_part')).toEqual({ name: 't_part', key: [['a', 1]], partialFilterExpression: { f: true } });
    expect(by.get('t_part_not')).toEqual({ name: 't_part_not', key: [['a', 1]], partialFilterExpression: { f: false } });
    expect(by.get('t_part2')).toEqual({ name: 't_part2', key: [['b', 1]], partialFilterExpression: { $and: [{ a: { $gt: 10 } }, { b: { $type: 'string' } }] } });
    expect(by.get('t_part3')).toEqual({ name: 't_part3', key: [['a', 1]], partialFilterExpression: { v: { $eq: "it's open" } } });
    expect(by.get('t_odd')).toEqual({ name: 't_odd', key: [['Odd "Name"', 1], ['b', -1]] });
    expect(by.get('t_incl')).toEqual({ name: 't_incl', key: [['a', 1]] });
    expect(by.get('t_num')).toEqual({ name: 't_num', key: [['1', 1], ['a', 1]] });
    expect([...by.keys()].sort()).toEqual(
      ['t_a', 't_ab_desc', 't_ad_key', 't_b_nnd', 't_b_uq', 't_c', 't_def', 't_incl', 't_num', 't_odd', 't_part', 't_part2', 't_part3', 't_part_not'].sort(),
    );
    // plain JSON: what the plan stores is what the target reads
    expect(JSON.parse(JSON.stringify(indexes))).toEqual(indexes);

    const w = (name: string) => warnings.filter((x) => x.includes(` ${name} `));
    for (const [name, why] of [
      ['t_lower', /"lower\(b\)" is an expression/],
      ['t_expr2', /is an expression/],
      ['t_e', /column "e" is an array \(integer\[\]\)/],
      ['t_gin', /is a gin index/],
      ['t_hash', /is a hash index/],
      ['t_part_bad', /partial \(WHERE length\(b\) > 3\).*no simple MongoDB equivalent/],
      ['t_part_null', /partial \(WHERE b IS NULL\)/],
      ['t_dot', /column "x\.y".*"\."/],
      ['t_excl', /exclusion constraint t_excl.*MongoDB has no exclusion constraints/],
      ['t_def', /DEFERRABLE: built on MongoDB without unique/],
    ] as const) {
      expect(w(name), name).toHaveLength(1);
      expect(w(name)[0]).toMatch(why);
      expect(w(name)[0]).toMatch(/^ix\.t: /);
    }
    // the primary key's own index is _id's: neither built again nor warned about
    expect(warnings.some((x) => x.includes('t_pk'))).toBe(false);
    expect(warnings).toHaveLength(10);
  });

  it('composite keys: key columns are _id.<col>; a unique index over a nullable timestamp keeps its micros', () => {
    const { indexes, warnings } = pgIndexesToMongo(table('ix.comp'));
    expect(warnings).toEqual([]);
    expect(indexes).toEqual([
      { name: 'comp_k2', key: [['_id.k2', 1], ['x', 1]] },
      { name: 'comp_ts', key: [['ts', 1], ['ts__micros', 1], ['_id.k1', 1]], unique: true, partialFilterExpression: { ts: { $type: ['date', 'string'] } } },
    ]);
  });

  it('a MongoDB source table (no PostgreSQL facts) gives nothing', () => {
    expect(pgIndexesToMongo({ ...table('ix.t'), extra: { engine: 'mongodb', indexes: [] } })).toEqual({ indexes: [], warnings: [] });
  });

  it('tables the mapping cannot hold are refused at preflight, naming table, column and what to do', async () => {
    for (const ok of ['ix.t', 'ix.comp', 'ix.tsms']) expect(pgToMongoProblems(table(ok)), ok).toEqual([]);
    const bad = tables.filter((t) => t.source.schema === 'bad');
    expect(pgToMongoProblems(table('bad.arr'))).toEqual(['bad.arr: primary key column "k" is of type integer[], an array: MongoDB refuses an array _id']);
    expect(pgToMongoProblems(table('bad.dom'))[0]).toMatch(/^bad\.dom: primary key column "k" is of type bad\.intarr, an array/);
    expect(pgToMongoProblems(table('bad.jb'))[0]).toMatch(/^bad\.jb: primary key column "k" is of type jsonb: its values may be arrays or hold \$-prefixed keys/);
    expect(pgToMongoProblems(table('bad.comp'))[0]).toMatch(/^bad\.comp: primary key column "b" is of type text\[\], an array/);
    expect(pgToMongoProblems(table('bad.cols'))).toEqual([
      'bad.cols: column "$x" starts with $: MongoDB refuses a $-prefixed top-level field (or _id field) in the replacements Ferry writes',
      'bad.cols: column "_id" is not in the primary key: it would collide with the documents\' _id (the primary key)',
      'bad.cols: column "ts__micros" collides with the sub-millisecond field Ferry writes next to timestamp column "ts"',
    ]);
    expect(pgToMongoProblems(table('bad.keyless'))[0]).toMatch(/^bad\.keyless has no primary key/);
    expect(pgToMongoProblems(table('bad.tskey'))).toEqual([
      'bad.tskey: primary key column "k" is of type timestamp with time zone, which holds microseconds: a MongoDB _id Date holds milliseconds, so keys within one millisecond would become one document',
    ]);
    expect(pgToMongoProblems(table('bad.tskey2'))[0]).toMatch(/^bad\.tskey2: primary key column "at" is of type timestamp\(6\) without time zone, which holds microseconds/);
    expect(() => refuseUnmappable(bad)).toThrow(PreflightError);

    // Through the bridged target's preflight (what `ferry plan` and `ferry run` call): refused before connecting.
    const target = pgRowsToMongo(new MongoSnapshotTarget({ url: 'mongodb://127.0.0.1:9/unused?serverSelectionTimeoutMS=500' } as never));
    try {
      const err = await target.preflight(bad, { truncate: false, resuming: false }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(PreflightError);
      const msg = String((err as Error).message);
      for (const s of ['bad.arr', 'bad.dom', 'bad.jb', 'bad.comp', '"$x"', '"_id"', '"ts__micros"', 'bad.keyless', 'bad.tskey', 'bad.tskey2']) expect(msg).toContain(s);
      expect((err as PreflightError & { hint?: string }).hint ?? JSON.stringify(err)).toMatch(/exclude/);
    } finally {
      await target.close();
    }
  });
});
