/**
 * One delivery of one job, from start to outcome. Shared by every runtime: the local worker loop and the SQS
 * Lambda map the outcome onto their own queue operations (ack, re-enqueue, retry, batch item failure).
 */
import { errorMessage } from '../errors.js';
import type { Job, TableSchema } from '../model.js';
import type { ProgressSink } from '../progress.js';
import type { SnapshotSource } from '../ports/source.js';
import type { StateStore } from '../ports/state-store.js';
import type { SnapshotTarget } from '../ports/target.js';
import { copyRange } from './copy-range.js';

export type JobOutcome =
  | { kind: 'done' }
  /** The job was already done (a duplicate delivery). */
  | { kind: 'skipped' }
  /** The time budget ran out: `continuation` carries on from the cursor. */
  | { kind: 'yielded'; continuation: Job }
  /** Failed, will be delivered again. */
  | { kind: 'retry'; error: string }
  /** Failed for good: attempts exhausted. */
  | { kind: 'failed'; error: string };

export interface ProcessJobDeps {
  source: SnapshotSource;
  target: SnapshotTarget;
  store: StateStore;
  progress: ProgressSink;
  /** The flow's tables by source key (from the stored flow). */
  tables: ReadonlyMap<string, TableSchema>;
}

export interface ProcessJobOptions {
  owner: string;
  batchRows: number;
  /** No new chunk starts after this (ms since epoch). */
  deadline: number;
  /** A chunk still running at this time is aborted and its last committed cursor yielded (see copyRange). */
  abortAt?: number;
  /** Cap on a chunk's bytes (see copyRange). */
  batchBytes?: number;
  signal?: AbortSignal;
  maxAttempts: number;
  leaseMs: number;
  /** Called after each committed chunk (e.g. to extend the queue's visibility). */
  heartbeat?: () => Promise<void>;
}

export async function processJob(
  deps: ProcessJobDeps,
  job: Job,
  receiveCount: number,
  opts: ProcessJobOptions,
): Promise<JobOutcome> {
  const { store, progress } = deps;
  const table = deps.tables.get(job.table);
  if (!table) {
    const error = `job ${job.id} names table ${job.table}, which is not part of flow ${job.flow}`;
    await store.failJob(job.flow, job.id, error, true);
    return { kind: 'failed', error };
  }
  const started = await store.startJob(job.flow, job.id, opts.owner, Date.now() + opts.leaseMs);
  if (!started) return { kind: 'skipped' };
  try {
    const result = await copyRange(deps, job, table, {
      batchRows: opts.batchRows,
      deadline: opts.deadline,
      abortAt: opts.abortAt,
      batchBytes: opts.batchBytes,
      signal: opts.signal,
      // A first delivery of a job no earlier delivery started (a continuation keeps the attempt count of the job
      // that yielded it, and its cursor is the one that job committed).
      fresh: { firstDelivery: receiveCount <= 1 && job.attempt === 0 },
      onChunk: async (c) => {
        progress.copied(job.table, c.rows, c.bytes);
        await store.recordProgress(
          job.flow,
          job.id,
          { cursor: c.cursor, rows: c.totalRows, bytes: c.totalBytes },
          Date.now() + opts.leaseMs,
        );
        await opts.heartbeat?.();
      },
    });
    if (result.status === 'yielded') return { kind: 'yielded', continuation: { ...job, cursor: result.cursor } };
    const record = await store.getJob(job.flow, job.id);
    await store.finishJob(job.flow, job.id, {
      cursor: null,
      rows: record?.rows ?? result.rows,
      bytes: record?.bytes ?? result.bytes,
    });
    progress.jobDone(job.table, job.id);
    return { kind: 'done' };
  } catch (err) {
    const error = errorMessage(err);
    const final = receiveCount >= opts.maxAttempts;
    await store.failJob(job.flow, job.id, error, final);
    progress.jobRetry(job.table, job.id, `${job.table} ${job.id}`, error, receiveCount);
    return final ? { kind: 'failed', error } : { kind: 'retry', error };
  }
}

/** Exponential backoff with jitter for a retried job, capped at 30 s. */
export function retryDelayMs(receiveCount: number): number {
  const base = Math.min(30_000, 500 * 2 ** Math.max(0, receiveCount - 1));
  return Math.round(base / 2 + Math.random() * (base / 2));
}
