import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';

/**
 * An in-process SQS emulator (fauxqs) for tests. Queues are created through the SQS API, as in production, so the
 * returned URLs are the ones the emulator itself hands out. Its queue URLs name a host like
 * `sqs.us-east-1.127.0.0.1`, which does not resolve; that is harmless because a client with an explicit endpoint
 * sends every request to the endpoint.
 */
export interface TestSqs {
  endpoint: string;
  client: SQSClient;
  createQueue(name: string, opts?: { dlqMaxReceiveCount?: number }): Promise<{ queueUrl: string; dlqUrl?: string }>;
  stop(): Promise<void>;
}

export async function startTestSqs(): Promise<TestSqs> {
  const server = await startFauxqs({ port: 0, host: '127.0.0.1', logger: false });
  const endpoint = `http://127.0.0.1:${server.port}`;
  const client = new SQSClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });

  async function create(name: string, attributes?: Record<string, string>): Promise<string> {
    const out = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!out.QueueUrl) throw new Error(`fauxqs returned no URL for queue ${name}`);
    return out.QueueUrl;
  }

  return {
    endpoint,
    client,
    async createQueue(name, opts) {
      if (opts?.dlqMaxReceiveCount === undefined) return { queueUrl: await create(name) };
      const dlqUrl = await create(`${name}-dlq`);
      const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }));
      const dlqArn = attrs.Attributes?.QueueArn;
      if (!dlqArn) throw new Error(`fauxqs returned no ARN for queue ${name}-dlq`);
      const queueUrl = await create(name, {
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.dlqMaxReceiveCount }),
      });
      return { queueUrl, dlqUrl };
    },
    async stop() {
      client.destroy();
      await server.stop();
    },
  };
}
