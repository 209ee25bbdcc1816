/**
 * Loading one chunk of a job, exactly once, whatever the queue delivers.
 *
 * Each chunk is one target transaction, with session_replication_role = replica (no target trigger or foreign key
 * fires on the rows it loads): lock the job's progress row in `_ferry.snapshot_progress`, delete the
 * chunk's key range, COPY the rows in, move the cursor, commit. A second delivery of the same job blocks on the
 * row lock until the first commits, then starts from the cursor the first one wrote: no chunk is ever loaded twice
 * and none is skipped. The delete makes a chunk that is loaded again (after `verify --repair`, a retry, or into a
 * target that already held some of these rows) end with exactly one copy of each row. It is skipped when the caller
 * knows the chunk is unwritten (a snapshot chunk at a cursor its own delivery accounts for, see copyRange): during
 * a snapshot the target table has no primary key yet (finalize builds it), so the delete is a scan of the table,
 * paid only by chunks that may have been attempted before.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Json, TableSchema } from '../../core/model.js';
import type { RowStream } from '../../core/ports/source.js';
import type { CopyStats, RangeWriter } from '../../core/ports/target.js';
import { copiedColumns, copyOptions, PG_COPY_BINARY, PG_COPY_TEXT } from './copy-format.js';
import { asPgRange, rangePredicate, targetRelation } from './ranges.js';
import { BEGIN_AS_REPLICA, replicaRoleError } from './replica-role.js';
import { columnList, qualified } from './sql.js';

/** Pieces smaller than this are joined before they are written to the target's COPY. */
const JOIN_BYTES = 32 * 1024;

export const PROGRESS_TABLE = '_ferry.snapshot_progress';

export const PROGRESS_DDL = [
  'CREATE SCHEMA IF NOT EXISTS _ferry',
  `CREATE TABLE IF NOT EXISTS ${PROGRESS_TABLE} (
     flow text NOT NULL,
     job_id text NOT NULL,
     cursor jsonb,
     done boolean NOT NULL DEFAULT false,
     rows bigint NOT NULL DEFAULT 0,
     bytes bigint NOT NULL DEFAULT 0,
     updated_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (flow, job_id))`,
];

export async function openRangeWriter(
  client: pg.PoolClient,
  flow: string,
  jobId: string,
  table: TableSchema,
): Promise<RangeWriter> {
  let state: { cursor: Json; done: boolean; committed: CopyStats };
  try {
    // Target triggers and foreign keys do not fire on the rows a chunk loads (see replica-role.ts).
    await client.query(BEGIN_AS_REPLICA);
    await client.query(
      `INSERT INTO ${PROGRESS_TABLE} (flow, job_id) VALUES ($1, $2) ON CONFLICT (flow, job_id) DO NOTHING`,
      [flow, jobId],
    );
    const { rows } = await client.query<{ cursor: string | null; done: string; rows: string; bytes: string }>(
      `SELECT cursor, done, rows, bytes FROM ${PROGRESS_TABLE} WHERE flow = $1 AND job_id = $2 FOR UPDATE`,
      [flow, jobId],
    );
    // Raw text parsers are installed: jsonb arrives as JSON text and booleans as 't'/'f'.
    const row = rows[0]!;
    state = {
      cursor: row.cursor === null ? null : (JSON.parse(row.cursor) as Json),
      done: row.done === 't',
      committed: { rows: Number(row.rows), bytes: Number(row.bytes) },
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    client.release(err as Error);
    throw replicaRoleError(err, 'target') ?? err;
  }
  return new PgRangeWriter(client, flow, jobId, table, state.cursor, state.done, state.committed);
}

class PgRangeWriter implements RangeWriter {
  private released = false;
  private stats: CopyStats = { rows: 0, bytes: 0 };

  constructor(
    private readonly client: pg.PoolClient,
    private readonly flow: string,
    private readonly jobId: string,
    private readonly table: TableSchema,
    readonly cursor: Json,
    readonly done: boolean,
    readonly committed: CopyStats,
  ) {}

  async write(boundsJson: Json, input: RowStream, opts: { unwritten?: boolean } = {}): Promise<CopyStats> {
    if (input.format !== PG_COPY_TEXT && input.format !== PG_COPY_BINARY) {
      input.stream.destroy();
      throw new Error(`PostgreSQL target cannot load rows in format ${input.format}`);
    }
    const bounds = asPgRange(boundsJson);
    const target = qualified(this.table.target);
    try {
      // Keyless tables have no identity to delete by; the progress lock alone keeps their chunks exactly-once.
      if (bounds.kind === 'pk' && !opts.unwritten) await this.client.query(`DELETE FROM ${targetRelation(this.table)} WHERE ${rangePredicate(this.table, bounds)}`);
    } catch (err) {
      input.stream.destroy();
      throw err;
    }
    const copy = this.client.query(
      copyStreams.from(`COPY ${target} (${columnList(copiedColumns(this.table))}) FROM STDIN ${copyOptions(input.format)}`),
    );
    // Each piece becomes one CopyData message (and socket writes) on the way in: small pieces (a source that hands
    // out a row at a time, or a socket read of a few rows) are joined into 32 kB or more; a piece that size already
    // (the PostgreSQL source pushes one per socket read of up to 64 kB, headers removed) passes as it is, uncopied.
    let bytes = 0;
    let held: Buffer[] = [];
    let heldBytes = 0;
    const take = (): Buffer => {
      const out = held.length === 1 ? held[0]! : Buffer.concat(held, heldBytes);
      held = [];
      heldBytes = 0;
      return out;
    };
    const count = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes < JOIN_BYTES) return done();
        done(null, take());
      },
      flush(done) {
        done(null, heldBytes ? take() : undefined);
      },
    });
    await pipeline(input.stream, count, copy);
    this.stats = { rows: Number(copy.rowCount ?? 0), bytes };
    return this.stats;
  }

  async commit(next: Json): Promise<void> {
    try {
      await this.client.query(
        `UPDATE ${PROGRESS_TABLE} SET cursor = $3::jsonb, done = $4, rows = rows + $5, bytes = bytes + $6,
           updated_at = now()
         WHERE flow = $1 AND job_id = $2`,
        [this.flow, this.jobId, JSON.stringify(next), next === null, this.stats.rows, this.stats.bytes],
      );
      await this.client.query('COMMIT');
    } catch (err) {
      await this.release(err as Error);
      throw err;
    }
    this.finish();
  }

  async release(err?: Error): Promise<void> {
    if (this.released) return;
    await this.client.query('ROLLBACK').catch(() => {});
    this.finish(err);
  }

  private finish(err?: Error): void {
    if (this.released) return;
    this.released = true;
    this.client.release(err);
  }
}
