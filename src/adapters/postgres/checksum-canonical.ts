/**
 * The PostgreSQL sides of cross-engine verify (forms in src/core/codec/canonical.ts). Unlike the PostgreSQL →
 * PostgreSQL checksum, which PostgreSQL computes over its own text, the rows are read (COPY text, streamed, never held)
 * and hashed here, because the other side's digest is computed by Ferry too, over the codec's mapping.
 *
 * - `PgDocFormChecksums`: a PostgreSQL source of a flow into MongoDB. Rows are read exactly as the snapshot reads
 *   them (PgSnapshotSource.read: the kept columns under the row filter) and mapped by the same codec.
 * - `PgRowFormChecksums`: a PostgreSQL target of a flow from MongoDB. The table the codec made for the collection,
 *   read under a predicate on its `_id` text column equivalent to the MongoDB `_id` range (canonical-ranges.ts).
 */
import copyStreams from 'pg-copy-streams';
import type { EndpointConfig } from '../../config/schema.js';
import { CANONICAL_DOC_KIND, CANONICAL_ROW_KIND, CanonicalDigest, documentForm, pgRowForm } from '../../core/codec/canonical.js';
import { mongoIdRangeForPg, type PgIdRange } from '../../core/codec/canonical-ranges.js';
import { pgTableForCollection, type FlattenMapping } from '../../core/codec/mongo-to-pg.js';
import { copyTextToDocuments, copyTextToRows } from '../../core/codec/row-streams.js';
import { FerryError } from '../../core/errors.js';
import { tableKey, type Json, type TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import type { RowImage } from '../../core/ports/change-source.js';
import type { Document } from 'bson';
import { PG_COPY_TEXT } from './copy-format.js';
import { PgPool } from './pool.js';
import { targetRelation } from './ranges.js';
import { BEGIN_AS_REPLICA } from './replica-role.js';
import type { PgSnapshotSource } from './snapshot-source.js';
import { columnList, literal } from './sql.js';

const ALL_KEYS: Json = { kind: 'pk', lower: null, upper: null };

export class PgDocFormChecksums implements Checksums {
  readonly checksumKind = CANONICAL_DOC_KIND;
  constructor(private readonly source: PgSnapshotSource) {}

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    if (table.primaryKey.length === 0) {
      throw new FerryError(`${tableKey(table.source)} has no primary key: a flow into MongoDB cannot hold it (it has no _id)`);
    }
    const rows = await this.source.read(table, range ?? ALL_KEYS, [PG_COPY_TEXT]);
    const digest = new CanonicalDigest();
    for await (const doc of copyTextToDocuments(rows.stream, table)) digest.add(documentForm(doc as Document));
    return digest.result();
  }
}

/** SQL for an `_id` range over the `_id` column (canonical EJSON text). No parameters: it runs inside COPY. */
export function idRangePredicate(r: PgIdRange | 'all'): string {
  if (r === 'all') return 'true';
  const j = `("_id"::jsonb)`;
  let expr: string;
  let cast: (v: string) => string;
  switch (r.bracket) {
    case 'objectId':
      expr = `((${j} ->> '$oid') COLLATE "C")`;
      cast = (v) => `(${literal(v)} COLLATE "C")`;
      break;
    case 'string':
      expr = `((${j} #>> '{}') COLLATE "C")`;
      cast = (v) => `(${literal(v)} COLLATE "C")`;
      break;
    case 'number':
      // A NaN _id sorts below every number in MongoDB: as -Infinity here (bounds are never NaN or infinite).
      expr = `(CASE WHEN coalesce(${j} ->> '$numberInt', ${j} ->> '$numberLong', ${j} ->> '$numberDouble', ${j} ->> '$numberDecimal') = 'NaN' THEN '-Infinity'
                    ELSE coalesce(${j} ->> '$numberInt', ${j} ->> '$numberLong', ${j} ->> '$numberDouble', ${j} ->> '$numberDecimal') END)::numeric`;
      cast = (v) => `${literal(v)}::numeric`;
      break;
    case 'date':
      expr = `((${j} -> '$date' ->> '$numberLong')::bigint)`;
      cast = (v) => `${literal(v)}::bigint`;
      break;
  }
  const parts: string[] = [];
  if (r.lower !== null) parts.push(`${expr} >= ${cast(r.lower)}`);
  if (r.upper !== null) parts.push(`${expr} < ${cast(r.upper)}`);
  return parts.length ? parts.join(' AND ') : 'true';
}

export class PgRowFormChecksums implements Checksums {
  readonly checksumKind = CANONICAL_ROW_KIND;
  private readonly pool: PgPool;

  constructor(
    config: EndpointConfig,
    private readonly mappings: Record<string, FlattenMapping>,
    opts: { connections: number },
  ) {
    this.pool = new PgPool(config, 'target', opts.connections);
  }

  /** The codec's table for a collection (source names in `table`), and the predicate of a range on it. */
  private where(table: TableSchema, range: Json | null): { pgTable: TableSchema; where: string } {
    const pgTable = pgTableForCollection(table, this.mappings[tableKey(table.source)]);
    const r = mongoIdRangeForPg(range);
    if (r === undefined) throw new FerryError(`cannot compare ${tableKey(table.source)} by this _id range on PostgreSQL: ${JSON.stringify(range).slice(0, 200)}`);
    return { pgTable, where: idRangePredicate(r) };
  }

  async checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    const { pgTable, where } = this.where(table, range);
    const columns = pgTable.columns.map((c) => c.name);
    const client = await this.pool.client();
    const digest = new CanonicalDigest();
    try {
      const stream = client.query(copyStreams.to(`COPY (SELECT ${columnList(columns)} FROM ${targetRelation(pgTable)} WHERE ${where}) TO STDOUT`));
      for await (const row of copyTextToRows(stream, columns)) digest.add(pgRowForm(pgTable, row as RowImage));
      client.release();
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    return digest.result();
  }

  async count(table: TableSchema): Promise<number> {
    const { pgTable } = this.where(table, null);
    return this.pool.withClient(async (c) => Number((await c.query(`SELECT count(*) AS n FROM ${targetRelation(pgTable)}`)).rows[0].n));
  }

  /** `--repair`: delete the range's rows (as a replica: no trigger fires), before it is copied again. */
  async clearRange(table: TableSchema, range: Json | null): Promise<void> {
    const { pgTable, where } = this.where(table, range);
    await this.pool.withClient(async (c) => {
      try {
        await c.query(`${BEGIN_AS_REPLICA}; DELETE FROM ${targetRelation(pgTable)} WHERE ${where}; COMMIT`);
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
