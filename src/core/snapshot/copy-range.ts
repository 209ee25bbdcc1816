/**
 * Copy one job's range, chunk by chunk, each chunk committed on the target before its progress is recorded.
 *
 * Stops when the range is done or when the time budget is spent (a Lambda has 15 minutes), returning the cursor to
 * continue from, so a huge range never starts over from its beginning. A chunk still running at `abortAt` (a Lambda
 * about to be killed) is cut short: its uncommitted rows are rolled back and the last committed cursor is yielded,
 * so the next delivery starts at once instead of after the queue's visibility timeout. Idempotent: the target's own record of the
 * job's cursor decides where to start, so a duplicate or retried delivery carries on instead of repeating.
 */
import type { Job, Json, TableSchema } from '../model.js';
import type { SnapshotSource } from '../ports/source.js';
import type { SnapshotTarget } from '../ports/target.js';

export interface CopyRangeDeps {
  source: SnapshotSource;
  target: SnapshotTarget;
}

export interface CopyRangeOptions {
  batchRows: number;
  /** Wall-clock deadline (ms since epoch) after which no new chunk starts. */
  deadline: number;
  /** Wall-clock time (ms since epoch) at which a chunk in flight is aborted and its cursor yielded. */
  abortAt?: number;
  /**
   * Cap on a chunk's bytes, as well as on its rows: after each chunk the rows of the next one are scaled to the
   * bytes per row just measured, so a wide table does not make 50,000-row chunks of gigabytes.
   */
  batchBytes?: number;
  /**
   * Set by a snapshot's delivery of a job (never by `verify --repair`): the target held none of the range's rows
   * before the job began (planning checked the tables empty or truncated them, and ranges are disjoint), so the only
   * rows inside the range are the ones this job's chunks committed, each chunk together with the cursor past it.
   * A chunk that starts at a cursor this delivery accounts for is then unwritten and skips its delete:
   * the cursor this delivery committed itself; or, for its first chunk, the job's own cursor when
   * `firstDelivery` (the first delivery of a job never started before, or of a continuation it yielded). Anything
   * else (a retry, a duplicate that finds the cursor moved, a resume after a crash) deletes first.
   */
  fresh?: { firstDelivery: boolean };
  /** Stop requested (SIGINT, SIGTERM): yield after the chunk in flight. */
  signal?: AbortSignal;
  /**
   * Called after each chunk the target committed, with that chunk's figures and the job's totals so far.
   * May extend leases. The chunk counts even if it throws (the target has it).
   */
  onChunk?: (chunk: { rows: number; bytes: number; cursor: Json; totalRows: number; totalBytes: number }) => Promise<void>;
}

export type CopyRangeResult =
  | { status: 'done'; rows: number; bytes: number }
  | { status: 'yielded'; rows: number; bytes: number; cursor: Json };

export async function copyRange(
  deps: CopyRangeDeps,
  job: Job,
  table: TableSchema,
  opts: CopyRangeOptions,
): Promise<CopyRangeResult> {
  let rows = 0;
  let bytes = 0;
  let chunkRows = opts.batchRows;
  // Where an unwritten chunk would start: the job's cursor, then the cursor this delivery last committed.
  let expected: Json | undefined = opts.fresh?.firstDelivery ? job.cursor : undefined;
  for (;;) {
    const writer = await deps.target.openRange(job.flow, job.id, table);
    let next: Json;
    let stopChunk: ReturnType<typeof setTimeout> | undefined;
    let cut = false;
    try {
      if (writer.done) {
        await writer.release();
        return { status: 'done', rows, bytes };
      }
      const chunk = await deps.source.nextChunk(table, job.range, writer.cursor, chunkRows);
      const stream = await deps.source.read(table, chunk.bounds, deps.target.accepts);
      if (opts.abortAt !== undefined) {
        // Destroying the source stream fails the COPY pipeline; the writer then rolls the chunk back.
        stopChunk = setTimeout(() => {
          cut = true;
          stream.stream.destroy(new ChunkDeadlineError(chunkRows));
        }, Math.max(0, opts.abortAt - Date.now()));
      }
      const unwritten = opts.fresh !== undefined && expected !== undefined && sameJson(writer.cursor, expected);
      const stats = await writer.write(chunk.bounds, stream, { unwritten });
      clearTimeout(stopChunk);
      if (cut) throw new ChunkDeadlineError(chunkRows);
      await writer.commit(chunk.next);
      next = chunk.next;
      expected = next;
      rows += stats.rows;
      bytes += stats.bytes;
      if (opts.batchBytes && stats.rows > 0) {
        const perRow = stats.bytes / stats.rows;
        chunkRows = Math.max(1, Math.min(opts.batchRows, Math.floor(opts.batchBytes / perRow)));
      }
      await opts.onChunk?.({
        ...stats,
        cursor: next,
        totalRows: writer.committed.rows + stats.rows,
        totalBytes: writer.committed.bytes + stats.bytes,
      });
    } catch (err) {
      clearTimeout(stopChunk);
      await writer.release();
      // Cut at the deadline: nothing of this chunk was committed, so the writer's cursor is where to go on from.
      // A cut with no chunk committed in this call would yield forever: fail the attempt instead, with advice.
      if (cut && rows > 0) return { status: 'yielded', rows, bytes, cursor: writer.cursor };
      if (cut) throw new ChunkDeadlineError(chunkRows);
      throw err;
    }
    if (next === null) return { status: 'done', rows, bytes };
    if (Date.now() >= opts.deadline || opts.signal?.aborted) return { status: 'yielded', rows, bytes, cursor: next };
  }
}

/** Cursors are small JSON values (key tuples of strings, block numbers, null) built the same way each time. */
function sameJson(a: Json, b: Json): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A chunk cut short because its invocation is about to end. */
export class ChunkDeadlineError extends Error {
  constructor(readonly chunkRows: number) {
    super(
      `a chunk of up to ${chunkRows} rows did not finish before the invocation's deadline and was rolled back; ` +
        'lower `batchRows` (or `FERRY_COPY_BATCH_BYTES`) so that one chunk fits well within the copy function\'s time',
    );
    this.name = 'ChunkDeadlineError';
  }
}
