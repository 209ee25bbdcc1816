/**
 * N workers pulling jobs from any JobQueue until the snapshot is finished. Used by the local runner; the SQS Lambda
 * receives its deliveries from the trigger instead and maps outcomes itself.
 */
import type { Delivery, JobQueue } from '../ports/job-queue.js';
import { type JobOutcome, retryDelayMs } from './process-job.js';

export interface WorkerLoopOptions {
  workers: number;
  visibilityMs: number;
  /** Jobs that must reach a terminal outcome (done, skipped, failed) before the loop ends. */
  outstanding: number;
  signal?: AbortSignal;
}

export async function runWorkerLoop(
  queue: JobQueue,
  handle: (delivery: Delivery) => Promise<JobOutcome>,
  opts: WorkerLoopOptions,
): Promise<void> {
  // Counted by job id: a redelivered duplicate that ends `skipped` must not count the same job twice.
  const terminal = new Set<string>();
  let firstError: unknown;
  const finished = () => terminal.size >= opts.outstanding || opts.signal?.aborted === true || firstError !== undefined;

  const worker = async () => {
    while (!finished()) {
      const [delivery] = await queue.receive(1, opts.visibilityMs, 500);
      if (!delivery) continue;
      try {
        const outcome = await handle(delivery);
        switch (outcome.kind) {
          case 'yielded':
            // Enqueue before ack: a crash in between duplicates the job (harmless), never loses it.
            await queue.enqueue([outcome.continuation]);
            await queue.ack(delivery.receipt);
            break;
          case 'retry':
            await queue.retry(delivery.receipt, retryDelayMs(delivery.receiveCount));
            break;
          default:
            await queue.ack(delivery.receipt);
            terminal.add(delivery.job.id);
        }
      } catch (err) {
        // The handler records job failures itself; reaching here means the state store itself failed.
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: opts.workers }, worker));
  if (firstError !== undefined) throw firstError;
}
