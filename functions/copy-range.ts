import middy from '@middy/core';
import sqsPartialBatchFailure from '@middy/sqs-partial-batch-failure';
import type { Context, SQSEvent } from 'aws-lambda';
import { CopyWorker } from '../src/runtime/aws/copy-batch.js';
import { awsContext } from './lib/context.js';
import { logger } from './lib/middleware.js';

let worker: CopyWorker | undefined;

/**
 * The SQS subscriber: copies each delivered range job until its time budget (the Lambda's remaining time less a
 * margin), then re-enqueues the cursor. One settled result per record; the middleware turns rejections into
 * batch item failures, so only those messages are delivered again.
 */
export const handler = middy<SQSEvent, unknown, Error, Context>()
  .use(sqsPartialBatchFailure({ logger: (reason: unknown, record: { messageId: string }) => logger.warn({ err: reason, messageId: record.messageId }, 'range job will be retried') }))
  .handler(async (event, context) => {
    worker ??= new CopyWorker(await awsContext());
    return worker.run(event.Records, {
      remainingMs: () => context.getRemainingTimeInMillis(),
      owner: `lambda:${context.awsRequestId}`,
      batchBytes: Number(process.env.FERRY_COPY_BATCH_BYTES) || undefined,
    });
  });
