/**
 * SnapshotSource for PostgreSQL: reads ranges with `COPY (SELECT …) TO STDOUT`, streamed straight through: a range
 * is never held in memory, whatever its size.
 */
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import type { EndpointConfig } from '../../config/schema.js';
import type { Json, PlannedRange, TableSchema } from '../../core/model.js';
import type { Chunk, RowStream, SequenceValue, Selection, SnapshotSource } from '../../core/ports/source.js';
import { connectionError, pgEndpoint, type PgEndpoint } from './connect.js';
import { chooseFormat, copiedColumns, copyOptions } from './copy-format.js';
import { describeTables, readSequences } from './introspect.js';
import { blockCount, planRanges } from './plan-ranges.js';
import { asPgRange, orderBy, type PgRange, rangePredicate, withCursor } from './ranges.js';
import { columnList, qualified } from './sql.js';

export class PgSnapshotSource implements SnapshotSource {
  private readonly pool: pg.Pool;
  private readonly endpoint: PgEndpoint;

  constructor(config: EndpointConfig, opts: { connections: number }) {
    this.endpoint = pgEndpoint(config, 'source');
    this.pool = new pg.Pool({ ...this.endpoint.config, max: opts.connections });
    this.pool.on('error', () => {}); // an idle client losing its server must not crash the process
  }

  /** Run `fn` with a pooled client; connection failures become errors that name the endpoint. */
  private async withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw connectionError(this.endpoint, err);
    }
    try {
      return await fn(client);
    } finally {
      client.release();
    }
  }

  describe(selection: Selection): Promise<TableSchema[]> {
    return this.withClient((c) => describeTables(c, selection));
  }

  planRanges(table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]> {
    return this.withClient((c) => planRanges(c, table, rowsPerRange));
  }

  async nextChunk(table: TableSchema, rangeJson: Json, cursor: Json, maxRows: number): Promise<Chunk> {
    const range = asPgRange(rangeJson);
    const rest = withCursor(range, cursor);
    return this.withClient(async (c) => {
      if (rest.kind === 'pk') {
        // The first key past `maxRows` rows ends the chunk; an index-only scan over the chunk's keys.
        const { rows } = await c.query<string[]>({
          text: `SELECT ${columnList(table.primaryKey)} FROM ${qualified(table.source)}
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
    });
  }

  async read(table: TableSchema, boundsJson: Json, accepted: readonly string[]): Promise<RowStream> {
    const bounds = asPgRange(boundsJson);
    const format = chooseFormat(table, accepted);
    const sql = `COPY (SELECT ${columnList(copiedColumns(table))} FROM ${qualified(table.source)}
                 WHERE ${rangePredicate(table, bounds)}) TO STDOUT ${copyOptions(format)}`;
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw connectionError(this.endpoint, err);
    }
    const stream = client.query(copyStreams.to(sql));
    // Release exactly once: cleanly at the end, or destroyed (dropped from the pool) if the COPY was cut short.
    let released = false;
    const release = (err?: Error) => {
      if (released) return;
      released = true;
      client.release(err);
    };
    stream.on('end', () => release());
    stream.on('error', (err) => release(err));
    stream.on('close', () => release(new Error('COPY stream closed before its end')));
    return { format, stream };
  }

  sequences(tables: TableSchema[]): Promise<SequenceValue[]> {
    return this.withClient((c) => readSequences(c, tables));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
