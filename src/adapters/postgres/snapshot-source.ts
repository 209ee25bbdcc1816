/**
 * SnapshotSource for PostgreSQL: reads ranges with `COPY (SELECT …) TO STDOUT`, streamed straight through: a range
 * is never held in memory, whatever its size.
 */
import type pg from 'pg';
import type { EndpointConfig } from '../../config/schema.js';
import type { Json, PlannedRange, TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import type { Chunk, RowStream, SequenceValue, Selection, SnapshotSource } from '../../core/ports/source.js';
import { PgPool } from './pool.js';
import { copyOut } from './snapshot-copy-out.js';
import { checksumRange } from './checksum.js';
import { chooseFormat, copiedColumns, copyOptions } from './copy-format.js';
import { describeTables, readSequences } from './introspect.js';
import { rowFilter } from './introspect-controls.js';
import { blockCount, planRanges } from './plan-ranges.js';
import { asPgRange, orderBy, type PgRange, rangePredicate, readFrom, withCursor } from './ranges.js';
import { columnList, ident, literal, qualified } from './sql.js';
import { PreflightError } from '../../core/errors.js';
import { PG_CHECKSUM_KIND, PG_SNAPSHOT_SOURCE_CAPABILITIES } from './capabilities.js';

export class PgSnapshotSource implements SnapshotSource, Checksums {
  readonly capabilities = PG_SNAPSHOT_SOURCE_CAPABILITIES;
  readonly checksumKind = PG_CHECKSUM_KIND;
  private readonly pool: PgPool;
  /**
   * An exported snapshot (from the replication slot's creation) that chunk reads run under while it is held, so
   * the snapshot is exactly the slot's starting point. Unset: each chunk reads the latest data.
   */
  private snapshot: string | undefined;

  useSnapshot(name: string | undefined): void {
    this.snapshot = name;
  }

  /** Start a read-only transaction on the exported snapshot, when there is one. */
  private async enterSnapshot(c: pg.PoolClient): Promise<boolean> {
    if (!this.snapshot) return false;
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT ${literal(this.snapshot)}`);
    return true;
  }

  constructor(config: EndpointConfig, opts: { connections: number }) {
    this.pool = new PgPool(config, 'source', opts.connections);
  }

  private withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.pool.withClient(fn);
  }

  describe(selection: Selection): Promise<TableSchema[]> {
    return this.withClient(async (c) => {
      try {
        return await describeTables(c, selection);
      } catch (err) {
        // Describing counts the rows of tables never analyzed: a table the user may not read fails here, before
        // the per-table privilege checks (preflight-safety.ts) can name every one.
        if ((err as { code?: string }).code !== '42501') throw err;
        const { rows } = await c.query<{ u: string }>('SELECT current_user AS u');
        throw new PreflightError(
          `the source user ${rows[0]?.u} may not read a selected table: ${(err as Error).message}`,
          `on the source, grant it USAGE on the schema and SELECT on every selected table (e.g. GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO ${ident(rows[0]?.u ?? 'user')})`,
        );
      }
    });
  }

  planRanges(table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]> {
    return this.withClient((c) => planRanges(c, table, rowsPerRange));
  }

  async nextChunk(table: TableSchema, rangeJson: Json, cursor: Json, maxRows: number): Promise<Chunk> {
    const range = asPgRange(rangeJson);
    const rest = withCursor(range, cursor);
    return this.withClient(async (c) => {
      const inSnapshot = await this.enterSnapshot(c);
      try {
        return await this.chunkOf(c, table, rest, maxRows);
      } finally {
        if (inSnapshot) await c.query('COMMIT');
      }
    });
  }

  private async chunkOf(c: pg.PoolClient, table: TableSchema, rest: PgRange, maxRows: number): Promise<Chunk> {
    {
      if (rest.kind === 'pk') {
        // The first key past `maxRows` rows ends the chunk; an index-only scan over the chunk's keys.
        const { rows } = await c.query<string[]>({
          text: `SELECT ${columnList(table.primaryKey)} FROM ${readFrom(table)}
                 WHERE ${rangePredicate(table, rest)} ORDER BY ${orderBy(table)} OFFSET ${maxRows} LIMIT 1`,
          rowMode: 'array',
        });
        const edge = rows[0]?.map(String);
        const bounds: PgRange = { ...rest, upper: edge ?? rest.upper };
        return { bounds, next: edge ?? null };
      }
      const rowsPerBlock = Math.max(1, table.estimatedRows / Math.max(1, table.estimatedBytes / 8192));
      const span = Math.max(1, Math.floor(maxRows / rowsPerBlock));
      let to: number | null = rest.from + span;
      if (rest.to !== null && to >= rest.to) to = rest.to;
      // The open-ended last range ends at the table's current end.
      else if (rest.to === null && to >= (await blockCount(c, table))) to = null;
      const bounds: PgRange = { kind: 'blocks', from: rest.from, to };
      return { bounds, next: to === null || to === rest.to ? null : to };
    }
  }

  async read(table: TableSchema, boundsJson: Json, accepted: readonly string[]): Promise<RowStream> {
    const bounds = asPgRange(boundsJson);
    const format = chooseFormat(table, accepted);
    const sql = `COPY (SELECT ${columnList(copiedColumns(table))} FROM ${readFrom(table)}
                 WHERE ${rangePredicate(table, bounds)}${rowFilter(table)}) TO STDOUT ${copyOptions(format)}`;
    const client = await this.pool.client();
    let inSnapshot: boolean;
    try {
      inSnapshot = await this.enterSnapshot(client);
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    const stream = client.query(copyOut(sql));
    // Release exactly once: cleanly at the end, or destroyed (dropped from the pool) if the COPY was cut short.
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      if (inSnapshot && !err) client.query('COMMIT').then(() => client.release(), (e: Error) => client.release(e));
      else client.release(err);
    };
    stream.on('end', () => release());
    stream.on('error', (err) => release(err));
    stream.on('close', () => release(new Error('COPY stream closed before its end')));
    return { format, stream };
  }

  checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    return this.withClient((c) => checksumRange(c, table, readFrom(table), range));
  }

  sequences(tables: TableSchema[]): Promise<SequenceValue[]> {
    return this.withClient((c) => readSequences(c, tables));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
