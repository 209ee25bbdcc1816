/** SnapshotTarget for PostgreSQL: schema first, ranges loaded exactly once, indexes and constraints at the end. */
import type pg from 'pg';
import type { EndpointConfig } from '../../config/schema.js';
import type { Json, TableSchema } from '../../core/model.js';
import type { Checksums, RangeChecksum } from '../../core/ports/checksum.js';
import { checksumRange } from './checksum.js';
import type { SequenceValue } from '../../core/ports/source.js';
import type { RangeWriter, SnapshotTarget } from '../../core/ports/target.js';
import { PgPool } from './pool.js';
import { BEGIN_AS_REPLICA } from './replica-role.js';
import { PG_COPY_BINARY, PG_COPY_TEXT } from './copy-format.js';
import { openRangeWriter, PROGRESS_DDL } from './range-writer.js';
import { targetRelation } from './ranges.js';
import { checkTargetTables, createTables, finalizeTables } from './schema-target.js';
import { PG_CHECKSUM_KIND, PG_SNAPSHOT_TARGET_CAPABILITIES } from './capabilities.js';

export class PgSnapshotTarget implements SnapshotTarget, Checksums {
  readonly accepts = [PG_COPY_BINARY, PG_COPY_TEXT] as const;
  readonly capabilities = PG_SNAPSHOT_TARGET_CAPABILITIES;
  readonly checksumKind = PG_CHECKSUM_KIND;
  private readonly pool: PgPool;

  constructor(config: EndpointConfig, opts: { connections: number }) {
    this.pool = new PgPool(config, 'target', opts.connections);
  }

  private withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.pool.withClient(fn);
  }

  preflight(tables: TableSchema[], opts: { truncate: boolean; resuming: boolean }): Promise<void> {
    return this.withClient((c) => checkTargetTables(c, tables, opts));
  }

  createTables(_flow: string, tables: TableSchema[]): Promise<void> {
    return this.withClient(async (c) => {
      for (const ddl of PROGRESS_DDL) await c.query(ddl);
      await createTables(c, tables);
    });
  }

  async openRange(flow: string, jobId: string, table: TableSchema): Promise<RangeWriter> {
    return openRangeWriter(await this.pool.client(), flow, jobId, table);
  }

  finalize(_flow: string, tables: TableSchema[], sequences: SequenceValue[]): Promise<{ warnings: string[] }> {
    return this.withClient((c) => finalizeTables(c, tables, sequences));
  }

  checksum(table: TableSchema, range: Json | null): Promise<RangeChecksum> {
    return this.withClient((c) => checksumRange(c, table, targetRelation(table), range));
  }

  resetTable(table: TableSchema): Promise<void> {
    return this.withClient(async (c) => {
      // As a replica: no TRUNCATE trigger of the target fires (see replica-role.ts).
      try {
        await c.query(`${BEGIN_AS_REPLICA}; TRUNCATE ${targetRelation(table)}; COMMIT`);
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
