/**
 * Checksums of documents: the count, and an order-independent digest (the sum modulo 2^128 of each document's MD5
 * over its canonical Extended JSON). The same documents give the same digest on any MongoDB deployment, whatever
 * the order they are read in. Comparable only with another digest of this kind (a PostgreSQL table's digest is
 * over its own text forms): `checksumKind`.
 */
import type { Document, MongoClient } from 'mongodb';
import { CANONICAL_DOC_KIND, CANONICAL_ROW_KIND, CanonicalDigest, documentForm, documentRowForm } from '../../core/codec/canonical.js';
import { pgRangeToIdFilter } from '../../core/codec/canonical-ranges.js';
import { EXACT_BSON, toCanonical } from '../../core/codec/ejson.js';
import { pgTableForCollection, type FlattenMapping } from '../../core/codec/mongo-to-pg.js';
import { tableKey, type Json, type TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import { databaseOfUrl } from './connect.js';
import { asMongoRange, rangeFilter } from './ranges.js';
import { TargetNames } from './target-names.js';

export const MONGO_CHECKSUM_KIND = 'mongo-md5-ejson-sum128';
/** The documents' own canonical Extended JSON (field order kept), summed like every cross-engine digest. */
export class DocumentDigest extends CanonicalDigest {
  addDocument(doc: Document): void {
    this.add(toCanonical(doc));
  }
}

export async function digestDocuments(docs: AsyncIterable<Document>): Promise<{ rows: number; hash: string }> {
  const d = new DocumentDigest();
  for await (const doc of docs) d.addDocument(doc);
  return { rows: d.rows, hash: d.hash };
}

/**
 * The MongoDB sides of cross-engine verify (forms in src/core/codec/canonical.ts), hashed here over documents read
 * with EXACT_BSON (every type kept):
 * - `MongoDocFormChecksums`: a MongoDB target of a flow from PostgreSQL. A PostgreSQL key range is read as the `_id`
 *   range of the codec's `_id`s (only asked for tables whose keys order alike: canonical-ranges.ts), else whole.
 * - `MongoRowFormChecksums`: a MongoDB source of a flow into PostgreSQL: each document as the row the codec makes.
 */
export class MongoDocFormChecksums implements Checksums {
  readonly checksumKind = CANONICAL_DOC_KIND;
  private readonly names: TargetNames;

  constructor(client: MongoClient, url: string) {
    this.names = new TargetNames(client, databaseOfUrl(url));
  }

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    const digest = new CanonicalDigest();
    for await (const doc of this.names.collection(table).find(pgRangeToIdFilter(table, range), EXACT_BSON)) digest.add(documentForm(doc));
    return digest.result();
  }

  count(table: TableSchema): Promise<number> {
    return this.names.collection(table).countDocuments({});
  }

  /** `--repair`: delete the range's documents before it is copied again (the copy from PostgreSQL only upserts). */
  async clearRange(table: TableSchema, range: Json | null): Promise<void> {
    await this.names.collection(table).deleteMany(pgRangeToIdFilter(table, range));
  }
}

export class MongoRowFormChecksums implements Checksums {
  readonly checksumKind = CANONICAL_ROW_KIND;

  constructor(
    private readonly client: MongoClient,
    private readonly mappings: Record<string, FlattenMapping>,
  ) {}

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    const mapping = this.mappings[tableKey(table.source)];
    const pgTable = pgTableForCollection(table, mapping);
    const filter = range === null ? {} : rangeFilter(asMongoRange(range));
    const digest = new CanonicalDigest();
    for await (const doc of this.client.db(table.source.schema).collection(table.source.name).find(filter, EXACT_BSON)) {
      digest.add(documentRowForm(pgTable, doc, mapping));
    }
    return digest.result();
  }

  count(table: TableSchema): Promise<number> {
    return this.client.db(table.source.schema).collection(table.source.name).countDocuments({});
  }
}
