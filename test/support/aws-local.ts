/**
 * The AWS side of a test, on 127.0.0.1: DynamoDB Local with Ferry's state table, fauxqs with the range-job queue
 * and its DLQ, and the environment the real entry points read (SST resource links, SDK endpoints).
 */
import { ReceiveMessageCommand, DeleteMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { createStateTable } from '../../src/adapters/dynamodb/dynamodb-state-store.js';
import { startDynamoDbLocal } from './dynamodb-local.js';
import { startTestSqs, type TestSqs } from './fauxqs.js';

export interface AwsLocal {
  sqs: TestSqs;
  queueUrl: string;
  dlqUrl: string;
  tableName: string;
  stop(): Promise<void>;
}

export async function startAwsLocal(links: { sourceUrl: string; targetUrl: string; maxReceiveCount: number }): Promise<AwsLocal> {
  const [dynamo, sqs] = await Promise.all([startDynamoDbLocal(), startTestSqs()]);
  const tableName = 'ferry-state';
  await createStateTable(dynamo.client, tableName);
  const { queueUrl, dlqUrl } = await sqs.createQueue('range-jobs', { dlqMaxReceiveCount: links.maxReceiveCount });
  Object.assign(process.env, {
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    SST_RESOURCE_App: JSON.stringify({ name: 'ferry', stage: 'test' }),
    SST_RESOURCE_FerryState: JSON.stringify({ name: tableName }),
    SST_RESOURCE_RangeJobs: JSON.stringify({ url: queueUrl }),
    SST_RESOURCE_SourceUrl: JSON.stringify({ value: links.sourceUrl }),
    SST_RESOURCE_TargetUrl: JSON.stringify({ value: links.targetUrl }),
  });
  return {
    sqs,
    queueUrl,
    dlqUrl: dlqUrl!,
    tableName,
    async stop() {
      await Promise.allSettled([sqs.stop(), dynamo.stop()]);
    },
  };
}

/**
 * What Lambda's SQS event source mapping does: receive batches, invoke the handler, delete the messages it did
 * not report as batch item failures, and leave those to reappear after the visibility timeout.
 */
/**
 * Lets a test hold the poller between receives: `hold()` resolves once the loop is parked (no receive or handler
 * in flight), so what the test counts next is what it ran itself.
 */
export class PollGate {
  held = false;
  private waiters: (() => void)[] = [];
  hold(): Promise<void> {
    this.held = true;
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    this.held = false;
  }
  /** Called by the loop while held. */
  parked(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

export function pollLikeLambda(
  sqs: TestSqs,
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>,
  opts: { batchSize: number; visibilitySeconds: number; signal: AbortSignal; gate?: PollGate },
): Promise<void> {
  const loop = async () => {
    while (!opts.signal.aborted) {
      if (opts.gate?.held) {
        opts.gate.parked();
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const out = await sqs.client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: opts.batchSize,
          WaitTimeSeconds: 1,
          VisibilityTimeout: opts.visibilitySeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) continue;
      const event = {
        Records: messages.map((m) => ({
          messageId: m.MessageId!,
          receiptHandle: m.ReceiptHandle!,
          body: m.Body!,
          attributes: { ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1' },
        })),
      } as unknown as SQSEvent;
      const { batchItemFailures } = await handler(event);
      const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
      const done = messages.filter((m) => !failed.has(m.MessageId!));
      if (done.length) {
        await sqs.client.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    }
  };
  return loop();
}

/** A Lambda context good enough for the handlers: the remaining time is what the copy budget reads. */
export function lambdaContext(remainingMs = 900_000) {
  const end = Date.now() + remainingMs;
  return {
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    functionName: 'test',
    getRemainingTimeInMillis: () => end - Date.now(),
  } as unknown as import('aws-lambda').Context;
}
