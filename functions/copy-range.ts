import middy from '@middy/core';
import sqsPartialBatchFailure from '@middy/sqs-partial-batch-failure';
import type { Context, SQSEvent } from 'aws-lambda';
import { silentProgress } from '../src/core/progress.js';
import { CopyWorker } from '../src/runtime/aws/copy-batch.js';
import { emfLine } from '../src/runtime/aws/stream-health.js';
import { awsContext } from './lib/context.js';
import { logger } from './lib/middleware.js';

let worker: CopyWorker | undefined;

/**
 * The SQS subscriber: copies each delivered range job until its time budget (the Lambda's remaining time less a
 * margin; a chunk still running near the end is aborted and its cursor yielded), then re-enqueues the cursor. One
 * settled result per record; the middleware turns rejections into batch item failures, so only those messages are
 * delivered again. Rows copied and jobs done go out as embedded metrics (the dashboard's rows/s and jobs done).
 */
export const handler = middy<SQSEvent, unknown, Error, Context>()
  .use(sqsPartialBatchFailure({ logger: (reason: unknown, record: { messageId: string }) => logger.warn({ err: reason, messageId: record.messageId }, 'range job will be retried') }))
  .handler(async (event, context) => {
    worker ??= new CopyWorker(await awsContext());
    const copied = new Map<string, number>();
    const results = await worker.run(event.Records, {
      remainingMs: () => context.getRemainingTimeInMillis(),
      owner: `lambda:${context.awsRequestId}`,
      batchBytes: Number(process.env.FERRY_COPY_BATCH_BYTES) || undefined,
      copyConcurrency: Number(process.env.FERRY_COPY_CONCURRENCY) || undefined,
      progress: { ...silentProgress, copied: (table, rows) => copied.set(table, (copied.get(table) ?? 0) + rows) },
    });
    const flows = new Set(event.Records.map((r) => (JSON.parse(r.body) as { flow?: string }).flow ?? 'unknown'));
    const done = results.filter((r) => r.status === 'fulfilled' && r.value === 'done').length;
    const rows = [...copied.values()].reduce((a, b) => a + b, 0);
    for (const flow of flows) {
      process.stdout.write(`${emfLine(flow, { JobsDone: { value: done, unit: 'Count' }, RowsCopied: { value: rows, unit: 'Count' } })}\n`);
    }
    return results;
  });
