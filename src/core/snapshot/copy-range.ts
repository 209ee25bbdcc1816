/**
 * Copy one job's range, chunk by chunk, each chunk committed on the target before its progress is recorded.
 *
 * Stops when the range is done or when the time budget is spent (a Lambda has 15 minutes), returning the cursor to
 * continue from, so a huge range never starts over from its beginning. Idempotent: the target's own record of the
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
  for (;;) {
    const writer = await deps.target.openRange(job.flow, job.id, table);
    let next: Json;
    try {
      if (writer.done) {
        await writer.release();
        return { status: 'done', rows, bytes };
      }
      const chunk = await deps.source.nextChunk(table, job.range, writer.cursor, opts.batchRows);
      const stream = await deps.source.read(table, chunk.bounds, deps.target.accepts);
      const stats = await writer.write(chunk.bounds, stream);
      await writer.commit(chunk.next);
      next = chunk.next;
      rows += stats.rows;
      bytes += stats.bytes;
      await opts.onChunk?.({
        ...stats,
        cursor: next,
        totalRows: writer.committed.rows + stats.rows,
        totalBytes: writer.committed.bytes + stats.bytes,
      });
    } catch (err) {
      await writer.release();
      throw err;
    }
    if (next === null) return { status: 'done', rows, bytes };
    if (Date.now() >= opts.deadline || opts.signal?.aborted) return { status: 'yielded', rows, bytes, cursor: next };
  }
}
