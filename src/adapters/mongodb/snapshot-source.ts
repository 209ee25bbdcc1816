/**
 * SnapshotSource for MongoDB: collections (table `schema` = database, `name` = collection) read by `_id` ranges with
 * majority read concern, streamed as documents (format `mongo-bson-docs`, object mode, EXACT_BSON values).
 *
 * Ranges come from a sorted random sample of `_id`s (`$sample`, then `$sort` on the server, so the order is the
 * server's own BSON order), one boundary every `rowsPerRange` documents' worth; a collection smaller than one range
 * is one range without sampling. Reads at different times see different states: the change stream, opened before the
 * first range, replays every later write as a converging one.
 */
import type { Readable } from 'node:stream';
import type { Collection, Document, MongoClient } from 'mongodb';
import type { EndpointConfig } from '../../config/schema.js';
import { EXACT_BSON, MONGO_DOCS } from '../../core/codec/ejson.js';
import { FerryError } from '../../core/errors.js';
import type { Json, PlannedRange, TableName, TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import type { Chunk, RowStream, SequenceValue, Selection, SnapshotSource } from '../../core/ports/source.js';
import { selectTables } from '../../core/selection.js';
import { MONGO_SNAPSHOT_SOURCE_CAPABILITIES } from './capabilities.js';
import { digestDocuments, MONGO_CHECKSUM_KIND } from './checksum.js';
import { databaseOfUrl, mongoClient } from './connect.js';
import { asMongoRange, ID_BRACKETS, idBound, rangeFilter, rangeLabel, rangesFromSample, typedRanges, withCursor, type MongoRange } from './ranges.js';

const SYSTEM_DBS = new Set(['admin', 'local', 'config']);
/** Sampled `_id`s per planned range: enough for even boundaries, bounded for huge collections. */
const SAMPLES_PER_RANGE = 64;
const MAX_SAMPLES = 100_000;

/** Comparison "brackets": numbers compare across their types, strings with symbols; other types only with themselves. */
export function bracketOf(v: unknown): string {
  if (typeof v === 'number') return 'number';
  if (typeof v === 'string') return 'string';
  const t = (v as { _bsontype?: string } | null)?._bsontype;
  if (t === 'Int32' || t === 'Double' || t === 'Long' || t === 'Decimal128') return 'number';
  if (t === 'BSONSymbol') return 'string';
  if (v instanceof Date) return 'date';
  if (Array.isArray(v)) return 'array';
  return t ?? (v === null ? 'null' : typeof v);
}

/**
 * How a collection is split, before any sample: `one` range for a collection no larger than one range (the
 * small-collection guard: no sample, no bounds), `whole` when its smallest and largest `_id` are of different
 * comparison brackets (bounds would miss the other types), else `sample` (ranges from sampled quantiles).
 */
export function splitKind(estimatedRows: number, rowsPerRange: number, minId: unknown, maxId: unknown): 'one' | 'whole' | 'sample' {
  if (estimatedRows <= rowsPerRange) return 'one';
  if (minId === undefined || maxId === undefined || bracketOf(minId) !== bracketOf(maxId)) return 'whole';
  return 'sample';
}

/**
 * What a MongoDB target needs: the secondary indexes to build after the load, and the collection's default
 * collation (string `_id` ranges compare under it: the target collection must have the same, or a range delete there
 * would cover other documents than the source's range held).
 */
export type MongoCollectionExtra = { engine: 'mongodb'; indexes: { name: string; spec: Json }[]; collation?: Json };

export class MongoSnapshotSource implements SnapshotSource, Checksums {
  readonly capabilities = MONGO_SNAPSHOT_SOURCE_CAPABILITIES;
  readonly checksumKind = MONGO_CHECKSUM_KIND;
  readonly client: MongoClient;

  constructor(private readonly config: EndpointConfig) {
    this.client = mongoClient(config, 'source');
  }

  private coll(t: TableName): Collection {
    return this.client.db(t.schema).collection(t.name);
  }

  async describe(selection: Selection): Promise<TableSchema[]> {
    const only = databaseOfUrl(this.config.url ?? '');
    const dbs = only ? [only] : (await this.client.db('admin').admin().listDatabases({ nameOnly: true })).databases.map((d) => d.name).filter((d) => !SYSTEM_DBS.has(d));
    const candidates: TableName[] = [];
    for (const db of dbs) {
      const colls = await this.client.db(db).listCollections({ type: 'collection' }, { nameOnly: true }).toArray();
      for (const c of colls) if (!c.name.startsWith('system.') && c.name !== '_ferry') candidates.push({ schema: db, name: c.name });
    }
    const chosen = selectTables(candidates, selection);
    const out: TableSchema[] = [];
    for (const { source, target } of chosen) {
      const coll = this.coll(source);
      const estimatedRows = await coll.estimatedDocumentCount();
      let estimatedBytes = 0;
      try {
        // One reply per shard on a sharded cluster.
        for (const s of await coll.aggregate([{ $collStats: { storageStats: {} } }]).toArray()) estimatedBytes += Number((s.storageStats as Document | undefined)?.size ?? 0);
      } catch {
        estimatedBytes = estimatedRows * 512;
      }
      const indexes = (await coll.listIndexes().toArray())
        .filter((ix) => ix.name !== '_id_')
        .map((ix) => {
          const { v: _v, ns: _ns, ...spec } = ix as Document;
          return { name: String(ix.name), spec: idBound(spec) };
        });
      const [info] = await this.client.db(source.schema).listCollections({ name: source.name }).toArray();
      const collation = (info as { options?: Document } | undefined)?.options?.collation as Document | undefined;
      const extra: MongoCollectionExtra = { engine: 'mongodb', indexes, ...(collation ? { collation: idBound(collation) } : {}) };
      out.push({
        source,
        target,
        columns: [{ name: '_id', type: 'mongodb:_id', nullable: false }],
        primaryKey: ['_id'],
        estimatedRows,
        estimatedBytes,
        extra: extra as unknown as Json,
      });
    }
    return out;
  }

  async planRanges(table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]> {
    const n = table.estimatedRows;
    // Small collection guard: one range, no sample.
    if (splitKind(n, rowsPerRange, null, null) === 'one') {
      const range: MongoRange = { kind: 'mongo-id', lower: null, upper: null };
      return [{ range: range as Json, label: rangeLabel(range), estimatedRows: n }];
    }
    const coll = this.coll(table.source);
    const [min] = await coll.find({}, { ...EXACT_BSON, projection: { _id: 1 } }).sort({ _id: 1 }).limit(1).toArray();
    const [max] = await coll.find({}, { ...EXACT_BSON, projection: { _id: 1 } }).sort({ _id: -1 }).limit(1).toArray();
    // Brackets are contiguous in the sort order: same bracket at both ends means every _id is in it.
    if (splitKind(n, rowsPerRange, min?._id, max?._id) === 'whole') {
      // Several types: one range per bracket present (an indexed `$type` lookup each), chunked like any other.
      const present: string[] = [];
      for (const b of ID_BRACKETS) if (await coll.findOne({ _id: { $type: b.types } } as Document, { projection: { _id: 1 } })) present.push(b.name);
      return typedRanges(present).map((r) => ({ range: r as Json, label: rangeLabel(r), estimatedRows: r.whole ? 0 : Math.round(n / Math.max(1, present.length)) }));
    }
    const count = Math.ceil(n / rowsPerRange);
    const size = Math.min(MAX_SAMPLES, n, count * SAMPLES_PER_RANGE);
    const sample = await coll.aggregate([{ $sample: { size } }, { $project: { _id: 1 } }, { $sort: { _id: 1 } }], { ...EXACT_BSON, allowDiskUse: true }).toArray();
    return rangesFromSample(sample.map((d) => d._id), count).map((r) => ({ range: r as Json, label: rangeLabel(r), estimatedRows: Math.round(n / count) }));
  }

  async nextChunk(table: TableSchema, rangeJson: Json, cursor: Json, maxRows: number): Promise<Chunk> {
    const range = asMongoRange(rangeJson);
    if (range.whole) return { bounds: range as Json, next: null };
    const rest = withCursor(range, cursor);
    const [edge] = await this.coll(table.source).find(rangeFilter(rest), { ...EXACT_BSON, projection: { _id: 1 } }).sort({ _id: 1 }).skip(maxRows).limit(1).toArray();
    const next = edge ? idBound(edge._id) : null;
    return { bounds: { ...rest, upper: next ?? rest.upper } as Json, next };
  }

  async read(table: TableSchema, boundsJson: Json, accepted: readonly string[]): Promise<RowStream> {
    if (!accepted.includes(MONGO_DOCS)) throw new FerryError(`the target accepts none of the MongoDB row formats (it accepts ${accepted.join(', ')})`);
    const bounds = asMongoRange(boundsJson);
    const cursor = this.coll(table.source).find(rangeFilter(bounds), { ...EXACT_BSON, sort: { _id: 1 }, batchSize: 1000 });
    const stream = cursor.stream() as unknown as Readable;
    stream.on('close', () => void cursor.close().catch(() => {}));
    return { format: MONGO_DOCS, stream };
  }

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    const filter = range === null ? {} : rangeFilter(asMongoRange(range));
    return digestDocuments(this.coll(table.source).find(filter, EXACT_BSON));
  }

  count(table: TableSchema): Promise<number> {
    return this.coll(table.source).countDocuments({});
  }

  async sequences(_tables: TableSchema[]): Promise<SequenceValue[]> {
    return [];
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
