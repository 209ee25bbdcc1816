/**
 * SnapshotTarget for MongoDB: collections created first, ranges loaded exactly once (range-writer.ts), secondary
 * indexes built after the load (a MongoDB source's index specs, or a PostgreSQL source's indexes and unique
 * constraints translated by pg-to-mongo-indexes.ts), like the PostgreSQL target's order.
 */
import type { Document, MongoClient } from 'mongodb';
import type { EndpointConfig } from '../../config/schema.js';
import { EXACT_BSON, fromCanonical, MONGO_DOCS } from '../../core/codec/ejson.js';
import { pgIndexesToMongo } from '../../core/codec/pg-to-mongo-indexes.js';
import { ConfigError } from '../../core/errors.js';
import { tableKey, type Json, type TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import type { SequenceValue } from '../../core/ports/source.js';
import type { RangeWriter, SnapshotTarget } from '../../core/ports/target.js';
import { MONGO_SNAPSHOT_TARGET_CAPABILITIES } from './capabilities.js';
import { digestDocuments, MONGO_CHECKSUM_KIND } from './checksum.js';
import { databaseOfUrl, mongoClient } from './connect.js';
import { asMongoRange, rangeFilter } from './ranges.js';
import { openMongoRangeWriter } from './range-writer.js';
import type { MongoCollectionExtra } from './snapshot-source.js';
import { TargetNames } from './target-names.js';

const NAMESPACE_EXISTS = 48;

/** Collation fields that change how strings compare (listCollections fills in the rest with their defaults). */
const ORDERING_FIELDS = ['locale', 'strength', 'caseLevel', 'caseFirst', 'numericOrdering', 'alternate', 'maxVariable', 'backwards'];

/**
 * Do two default collations (listCollections `options.collation`, absent for the simple binary one) order strings the
 * same? Fields one side leaves out (another server version) are not compared.
 */
export function sameCollation(a: Document | undefined, b: Document | undefined): boolean {
  const simple = (c: Document | undefined) => !c || c.locale === 'simple';
  if (simple(a) || simple(b)) return simple(a) && simple(b);
  return ORDERING_FIELDS.every((f) => a![f] === undefined || b![f] === undefined || String(a![f]) === String(b![f]));
}

export class MongoSnapshotTarget implements SnapshotTarget, Checksums {
  readonly accepts = [MONGO_DOCS] as const;
  readonly capabilities = MONGO_SNAPSHOT_TARGET_CAPABILITIES;
  readonly checksumKind = MONGO_CHECKSUM_KIND;
  readonly client: MongoClient;
  private readonly names: TargetNames;

  constructor(config: EndpointConfig) {
    this.client = mongoClient(config, 'target');
    this.names = new TargetNames(this.client, databaseOfUrl(config.url ?? ''));
  }

  async preflight(tables: TableSchema[], opts: { truncate: boolean; resuming: boolean }): Promise<void> {
    const seen = new Map<string, string>();
    for (const t of tables) {
      const p = this.names.place(t);
      const key = `${p.db}.${p.coll}`;
      const other = seen.get(key);
      if (other) throw new ConfigError(`${other} and ${tableKey(t.source)} would both land in MongoDB collection ${key}`, 'give one of them another name with `rename`');
      seen.set(key, tableKey(t.source));
      const coll = this.names.collection(t);
      const extra = t.extra as MongoCollectionExtra | null;
      if (extra?.engine === 'mongodb') {
        // `_id` ranges of string keys compare under the collection's collation: both sides must order them alike.
        const [info] = await this.client.db(p.db).listCollections({ name: p.coll }).toArray();
        const have = (info as { options?: Document } | undefined)?.options?.collation as Document | undefined;
        const want = extra.collation ? (fromCanonical(JSON.stringify(extra.collation)) as Document) : undefined;
        if (info && !sameCollation(have, want)) {
          throw new ConfigError(
            `target collection ${key} exists with collation ${JSON.stringify(have ?? 'simple')}, the source's is ${JSON.stringify(want ?? 'simple')}: \`_id\` ranges would not cover the same documents on both sides`,
            'drop the target collection (Ferry creates it with the source\'s collation), or copy into another one with `rename`',
          );
        }
      }
      if (opts.truncate) {
        await coll.deleteMany({});
        continue;
      }
      if (opts.resuming) continue;
      if (await coll.findOne({}, { projection: { _id: 1 } })) {
        throw new ConfigError(
          `target collection ${key} already has documents`,
          'empty it, or set `target.onExistingRows: truncate` to delete them before the copy',
        );
      }
    }
  }

  async createTables(_flow: string, tables: TableSchema[]): Promise<void> {
    for (const t of tables) {
      const p = this.names.place(t);
      // A MongoDB source's default collation comes along: `_id` range deletes must cover what the source's range did.
      const extra = t.extra as MongoCollectionExtra | null;
      const collation = extra?.engine === 'mongodb' && extra.collation ? (fromCanonical(JSON.stringify(extra.collation)) as Document) : undefined;
      await this.client.db(p.db).createCollection(p.coll, collation ? { collation: collation as never } : {}).catch((err: { code?: number }) => {
        if (err.code !== NAMESPACE_EXISTS) throw err;
      });
    }
  }

  openRange(flow: string, jobId: string, table: TableSchema): Promise<RangeWriter> {
    return openMongoRangeWriter(this.names.markers(), this.names.collection(table), flow, jobId);
  }

  /** Secondary indexes of the source, built now that the documents are in (one pass instead of per insert). */
  async finalize(_flow: string, tables: TableSchema[], _sequences: SequenceValue[]): Promise<{ warnings: string[] }> {
    const warnings: string[] = [];
    for (const t of tables) {
      const extra = t.extra as MongoCollectionExtra | null;
      let specs: Document[];
      if (extra?.engine === 'mongodb') {
        specs = extra.indexes.map((ix) => fromCanonical(JSON.stringify(ix.spec)) as Document);
      } else {
        // A PostgreSQL source's indexes and unique constraints, translated (pg-to-mongo-indexes.ts); the key as a Map
        // so that field order holds whatever the names (an object would put integer-like names first).
        const pgIndexes = pgIndexesToMongo(t);
        warnings.push(...pgIndexes.warnings);
        specs = pgIndexes.indexes.map((ix) => ({ ...ix, key: new Map(ix.key) }));
      }
      if (!specs.length) continue;
      const db = this.client.db(this.names.place(t).db);
      const coll = this.names.place(t).coll;
      try {
        await db.command({ createIndexes: coll, indexes: specs }); // one pass over the collection for all of them
      } catch (err) {
        if (specs.length === 1) {
          warnings.push(`index ${String(specs[0]!.name)} of ${tableKey(t.target)} could not be built: ${(err as Error).message}`);
          continue;
        }
        // Which one? Build them one at a time (an already built one is a no-op), so one refusal costs only itself.
        for (const spec of specs) {
          await db.command({ createIndexes: coll, indexes: [spec] }).catch((e: Error) => {
            warnings.push(`index ${String(spec.name)} of ${tableKey(t.target)} could not be built: ${e.message}`);
          });
        }
      }
    }
    return { warnings };
  }

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    const filter = range === null ? {} : rangeFilter(asMongoRange(range));
    return digestDocuments(this.names.collection(table).find(filter, EXACT_BSON));
  }

  count(table: TableSchema): Promise<number> {
    return this.names.collection(table).countDocuments({});
  }

  async resetTable(table: TableSchema): Promise<void> {
    await this.names.collection(table).deleteMany({});
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
