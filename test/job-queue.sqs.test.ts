import { ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsJobQueue, jobFromSqsRecord } from '../src/adapters/sqs/sqs-job-queue.js';
import { jobQueueContract, makeJob } from './contracts/job-queue.contract.js';
import { startTestSqs, type TestSqs } from './support/fauxqs.js';

let sqs: TestSqs;
let queues = 0;
/** A fresh queue name per test: fauxqs keeps every queue until it stops. */
const fresh = (prefix: string) => `${prefix}-${process.pid}-${++queues}`;

beforeAll(async () => {
  sqs = await startTestSqs();
});
afterAll(async () => {
  await sqs?.stop();
});

jobQueueContract('SqsJobQueue on fauxqs', async () => {
  const { queueUrl } = await sqs.createQueue(fresh('contract'));
  const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
  return { queue, cleanup: () => queue.close() };
});

describe('SqsJobQueue', () => {
  it('moves a job to the dead-letter queue after maxReceiveCount receives without ack', async () => {
    const { queueUrl, dlqUrl } = await sqs.createQueue(fresh('redrive'), { dlqMaxReceiveCount: 2 });
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    const dlq = new SqsJobQueue({ client: sqs.client, queueUrl: dlqUrl! });
    const job = makeJob(1);
    await queue.enqueue([job]);
    for (const count of [1, 2]) {
      const [d] = await queue.receive(1, 30_000, 2000);
      expect(d!.receiveCount).toBe(count);
      await queue.retry(d!.receipt, 0); // give up on it at once, as a failing worker would after its timeout
    }
    expect(await queue.receive(10, 30_000, 1000)).toEqual([]);
    const [dead] = await dlq.receive(10, 30_000, 2000);
    expect(dead!.job).toEqual(job);
    await queue.close();
    await dlq.close();
  });

  it('does not deduplicate: the same job enqueued twice is delivered twice', async () => {
    const { queueUrl } = await sqs.createQueue(fresh('dup'));
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    await queue.enqueue([makeJob(1)]);
    await queue.enqueue([makeJob(1), makeJob(1)]);
    const got = await queue.receive(10, 30_000, 2000);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((d) => d.receipt)).size).toBe(3);
    for (const d of got) expect(d.job).toEqual(makeJob(1));
    await queue.close();
  });

  it('receives more than 10 jobs in one call when max allows', async () => {
    const { queueUrl } = await sqs.createQueue(fresh('many'));
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    await queue.enqueue(Array.from({ length: 25 }, (_, i) => makeJob(i)));
    const got = await queue.receive(25, 30_000, 2000);
    expect(got.length).toBeGreaterThan(10);
    expect(new Set(got.map((d) => d.job.id)).size).toBe(got.length);
    await queue.close();
  });

  it('splits batches by size and rejects a job over 256 KiB without enqueuing anything', async () => {
    const { queueUrl } = await sqs.createQueue(fresh('size'));
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    // Ten 100 KB jobs fit the entry limit of one batch but not its 256 KiB size limit.
    const big = Array.from({ length: 10 }, (_, i) => makeJob(i, { cursor: 'x'.repeat(100_000) }));
    await queue.enqueue(big);
    const got = await queue.receive(10, 30_000, 2000);
    expect(got).toHaveLength(10);
    for (const d of got) await queue.ack(d.receipt);

    const tooBig = makeJob(99, { cursor: 'y'.repeat(300_000) });
    await expect(queue.enqueue([makeJob(1), tooBig])).rejects.toThrow(/public\.orders#99.*limit is 262144/);
    expect(await queue.receive(10, 30_000, 0)).toEqual([]);
    await queue.close();
  });

  it('rounds visibility up to whole seconds', async () => {
    const { queueUrl } = await sqs.createQueue(fresh('round'));
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    await queue.enqueue([makeJob(1)]);
    const [d] = await queue.receive(1, 1, 1000); // 1 ms becomes 1 s, never 0 (which would mean "visible now")
    const t = Date.now();
    const [again] = await queue.receive(1, 30_000, 3000);
    expect(d).toBeDefined();
    expect(again!.receiveCount).toBe(2);
    expect(Date.now() - t).toBeGreaterThanOrEqual(800);
    await queue.close();
  });

  it('jobFromSqsRecord turns a Lambda record, as SQS delivers it, into a Delivery', async () => {
    const { queueUrl } = await sqs.createQueue(fresh('lambda'));
    const queue = new SqsJobQueue({ client: sqs.client, queueUrl });
    const job = makeJob(3, { cursor: { s: 'emoji \ud83d\ude80, non-character \uffff' } });
    await queue.enqueue([job]);
    const raw = await sqs.client.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 2, MessageSystemAttributeNames: ['All'] }),
    );
    const m = raw.Messages![0]!;
    const delivery = jobFromSqsRecord({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body!,
      attributes: { ApproximateReceiveCount: m.Attributes!.ApproximateReceiveCount! },
    });
    expect(delivery).toEqual({ job, receipt: m.ReceiptHandle, receiveCount: 1 });
    await queue.close();
  });

  it('jobFromSqsRecord rejects a body that is not a job', () => {
    const record = (body: string) => ({ messageId: 'm-1', receiptHandle: 'r', body, attributes: { ApproximateReceiveCount: '1' } });
    expect(() => jobFromSqsRecord(record('not json'))).toThrow(/m-1 is not JSON/);
    expect(() => jobFromSqsRecord(record('{"flow":"f"}'))).toThrow(/m-1 is not a Ferry job/);
    expect(() => jobFromSqsRecord({ ...record(JSON.stringify(makeJob(1))), attributes: { ApproximateReceiveCount: 'x' } })).toThrow(
      /ApproximateReceiveCount/,
    );
  });

  it('retries entries SQS failed on its side and fails at once on entries it rejects', async () => {
    const calls: string[][] = [];
    const fake = (failures: (ids: string[]) => { Id: string; SenderFault: boolean; Code: string }[]) =>
      ({
        async send(command: { input: { Entries: { Id: string }[] } }) {
          const ids = command.input.Entries.map((e) => e.Id);
          calls.push(ids);
          return { Successful: [], Failed: failures(ids) };
        },
      }) as unknown as SQSClient;

    const flaky = new SqsJobQueue({
      client: fake((ids) => (calls.length === 1 ? [{ Id: ids[1]!, SenderFault: false, Code: 'InternalError' }] : [])),
      queueUrl: 'q',
    });
    await flaky.enqueue([makeJob(1), makeJob(2), makeJob(3)]);
    expect(calls).toEqual([['m0', 'm1', 'm2'], ['m1']]);

    calls.length = 0;
    const rejecting = new SqsJobQueue({
      client: fake((ids) => [{ Id: ids[0]!, SenderFault: true, Code: 'InvalidMessageContents' }]),
      queueUrl: 'q',
    });
    await expect(rejecting.enqueue([makeJob(1)])).rejects.toThrow(/InvalidMessageContents/);
    expect(calls).toHaveLength(1);
  });
});
