import type { Job } from '../model.js';

export interface Delivery {
  job: Job;
  /** Handle for ack/retry/extend of this delivery only. */
  receipt: string;
  /** 1 on first delivery; counts redeliveries (SQS ApproximateReceiveCount). */
  receiveCount: number;
}

/**
 * At-least-once delivery of jobs. A received job is invisible for `visibilityMs`; if not acked by then it is
 * delivered again. Consumers must therefore be idempotent; they are (see RangeWriter).
 */
export interface JobQueue {
  enqueue(jobs: Job[]): Promise<void>;
  /**
   * Wait up to `waitMs` for at most `max` (≥ 1) jobs. Resolves early with what is there. SQS may answer up to
   * ~0.5 s after `waitMs`; delivery order is not promised.
   */
  receive(max: number, visibilityMs: number, waitMs: number): Promise<Delivery[]>;
  /**
   * Ack, retry and extend with a stale receipt (the delivery already ended: redelivered, acked or retried) resolve
   * and do nothing; a stale ack may or may not delete the job. Backends may round times up to whole seconds (SQS).
   */
  ack(receipt: string): Promise<void>;
  /** Make the job visible again after `delayMs` (0: now). */
  retry(receipt: string, delayMs: number): Promise<void>;
  /** Keep a long job invisible for another `visibilityMs`, counted from now. */
  extend(receipt: string, visibilityMs: number): Promise<void>;
  /** A waiting `receive` resolves with []; `enqueue` and `receive` reject afterwards. */
  close(): Promise<void>;
}
