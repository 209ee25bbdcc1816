import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
  type SendMessageBatchRequestEntry,
} from '@aws-sdk/client-sqs';
import type { Delivery, JobQueue } from '../../core/ports/job-queue.js';
import type { Job } from '../../core/model.js';

/**
 * JobQueue on an SQS standard queue. The message body is the Job as JSON; SQS supplies the visibility timeout,
 * redelivery, ApproximateReceiveCount and the redrive to a dead-letter queue.
 *
 * SQS counts time in whole seconds, so visibility, retry delays and extensions are rounded up (a job is never
 * visible earlier than asked), and long polls are at most 20 s (longer waits are several polls).
 *
 * The client belongs to the caller: close() only stops this queue (and aborts its pending long polls).
 */

export interface SqsJobQueueOptions {
  client: SQSClient;
  queueUrl: string;
}

/** The classic SQS limit for one message and for one batch request. Queues may allow 1 MiB now; 256 KiB is safe. */
export const SQS_MAX_MESSAGE_BYTES = 256 * 1024;
const MAX_BATCH_ENTRIES = 10;
const MAX_WAIT_SECONDS = 20;
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60;
/** SendMessageBatch requests in flight at once while enqueuing a large plan. */
const SEND_CONCURRENCY = 4;
/** Attempts for entries that SQS failed on its side inside an otherwise successful batch. */
const BATCH_ATTEMPTS = 5;

/** What a Lambda SQS event record carries that we need (aws-lambda's SQSRecord has these fields and more). */
export interface SqsRecordLike {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount: string };
}

/** Turn one record of a Lambda SQS event into a Delivery; throws if the body is not a Ferry job. */
export function jobFromSqsRecord(record: SqsRecordLike): Delivery {
  return {
    job: decodeJob(record.body, record.messageId),
    receipt: record.receiptHandle,
    receiveCount: parseReceiveCount(record.attributes.ApproximateReceiveCount, record.messageId),
  };
}

export class SqsJobQueue implements JobQueue {
  readonly #client: SQSClient;
  readonly #queueUrl: string;
  readonly #polls = new Set<AbortController>();
  #closed = false;

  constructor(options: SqsJobQueueOptions) {
    this.#client = options.client;
    this.#queueUrl = options.queueUrl;
  }

  async enqueue(jobs: Job[]): Promise<void> {
    this.#assertOpen('enqueue');
    // Encode (and size-check) every job before sending any, so an oversized job enqueues nothing.
    const bodies = jobs.map(encodeJob);
    const batches = toBatches(bodies);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) await this.#sendBatch(batches[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(SEND_CONCURRENCY, batches.length) }, worker));
  }

  async receive(max: number, visibilityMs: number, waitMs: number): Promise<Delivery[]> {
    this.#assertOpen('receive');
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`receive: max must be an integer >= 1, got ${max}`);
    const visibility = toSeconds('visibilityMs', visibilityMs);
    checkDuration('waitMs', waitMs);
    const deadline = Date.now() + waitMs;
    const poll = new AbortController();
    this.#polls.add(poll);
    const deliveries: Delivery[] = [];
    try {
      for (;;) {
        // Once something has arrived, only top up without waiting; before that, long-poll for the time left
        // (rounded to the nearest second: waiting up to 0.5 s too long beats a busy loop of short polls).
        const wait = deliveries.length > 0 ? 0 : Math.min(MAX_WAIT_SECONDS, Math.round((deadline - Date.now()) / 1000));
        const asked = Math.min(MAX_BATCH_ENTRIES, max - deliveries.length);
        const out = await this.#client.send(
          new ReceiveMessageCommand({
            QueueUrl: this.#queueUrl,
            MaxNumberOfMessages: asked,
            VisibilityTimeout: visibility,
            WaitTimeSeconds: Math.max(0, wait),
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
          { abortSignal: poll.signal },
        );
        const messages = out.Messages ?? [];
        for (const m of messages) {
          const delivery = toDelivery(m);
          // A body that is not a job stays hidden and reaches the dead-letter queue after maxReceiveCount
          // receives; failing the whole receive would hide the good jobs of this batch as well.
          if (delivery) deliveries.push(delivery);
        }
        if (deliveries.length >= max) return deliveries;
        if (deliveries.length > 0 && messages.length < asked) return deliveries; // drained for now
        if (messages.length === 0 && (wait <= 0 || Date.now() >= deadline)) return deliveries;
      }
    } catch (err) {
      // close() aborted the long poll: the contract (see the JobQueue contract tests) says [] then. Messages SQS handed to the aborted request
      // stay hidden until their visibility timeout and are redelivered, which at-least-once allows.
      if (poll.signal.aborted) return [];
      throw err;
    } finally {
      this.#polls.delete(poll);
    }
  }

  async ack(receipt: string): Promise<void> {
    await this.#ignoringStale(new DeleteMessageCommand({ QueueUrl: this.#queueUrl, ReceiptHandle: receipt }));
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    await this.#changeVisibility(receipt, toSeconds('delayMs', delayMs));
  }

  async extend(receipt: string, visibilityMs: number): Promise<void> {
    await this.#changeVisibility(receipt, toSeconds('visibilityMs', visibilityMs));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const poll of this.#polls) poll.abort();
  }

  async #changeVisibility(receipt: string, seconds: number): Promise<void> {
    await this.#ignoringStale(
      new ChangeMessageVisibilityCommand({ QueueUrl: this.#queueUrl, ReceiptHandle: receipt, VisibilityTimeout: seconds }),
    );
  }

  /**
   * A receipt goes stale when its delivery ends (redelivery, ack, retry(0)). The port makes ack/retry/extend with a
   * stale receipt a no-op: the job was or will be delivered again and the consumer is idempotent.
   */
  async #ignoringStale(command: DeleteMessageCommand | ChangeMessageVisibilityCommand): Promise<void> {
    try {
      // The union defeats send()'s overloads; both commands are plain SQS commands.
      await this.#client.send(command as ChangeMessageVisibilityCommand);
    } catch (err) {
      if (!isStaleReceiptError(err)) throw err;
    }
  }

  /** Send one batch; retry the entries SQS failed on its side, fail at once on entries it rejects as invalid. */
  async #sendBatch(bodies: string[]): Promise<void> {
    let pending: SendMessageBatchRequestEntry[] = bodies.map((body, i) => ({ Id: `m${i}`, MessageBody: body }));
    for (let attempt = 1; ; attempt++) {
      // Whole-request failures (throttling, network) are retried by the SDK's own retry strategy.
      const out = await this.#client.send(new SendMessageBatchCommand({ QueueUrl: this.#queueUrl, Entries: pending }));
      const failed = out.Failed ?? [];
      if (failed.length === 0) return;
      const rejected = failed.find((f) => f.SenderFault);
      if (rejected || attempt >= BATCH_ATTEMPTS) {
        const f = rejected ?? failed[0]!;
        const body = pending.find((e) => e.Id === f.Id)?.MessageBody ?? '';
        throw new Error(
          `SQS did not accept ${failed.length} job(s) for ${this.#queueUrl}` +
            `${rejected ? '' : ` after ${attempt} attempts`}; first: ${describeBody(body)}: ${f.Code}: ${f.Message ?? ''}`,
        );
      }
      const ids = new Set(failed.map((f) => f.Id));
      pending = pending.filter((e) => ids.has(e.Id));
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new Error(`SqsJobQueue.${op}: the queue is closed`);
  }
}

/**
 * SQS accepts only #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF in a body (and fauxqs not even the
 * astral planes). JSON.stringify already escapes control characters and lone surrogates but leaves U+FFFE, U+FFFF
 * and surrogate pairs raw. Outside JSON strings there are only ASCII characters, so every match is inside a string,
 * where a \uXXXX escape means the same character: the body parses back to exactly the same job.
 */
const SQS_UNSAFE = /[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD]/g;

function encodeJob(job: Job): string {
  const body = JSON.stringify(job).replace(SQS_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > SQS_MAX_MESSAGE_BYTES) {
    throw new Error(
      `Job ${job.flow}/${job.id} (table ${job.table}) is ${bytes} bytes as an SQS message; the limit is ` +
        `${SQS_MAX_MESSAGE_BYTES}. Its range or cursor is too large to travel through the job queue.`,
    );
  }
  return body;
}

function decodeJob(body: string | undefined, messageId: string | undefined): Job {
  let value: unknown;
  try {
    value = JSON.parse(body ?? '');
  } catch {
    throw new Error(`SQS message ${messageId ?? '?'} is not JSON, so not a Ferry job: ${describeBody(body ?? '')}`);
  }
  const v = value as Partial<Record<keyof Job, unknown>> | null;
  if (
    typeof v !== 'object' || v === null || Array.isArray(v) ||
    typeof v.flow !== 'string' || typeof v.id !== 'string' || typeof v.table !== 'string' ||
    typeof v.attempt !== 'number' || !('range' in v) || !('cursor' in v)
  ) {
    throw new Error(`SQS message ${messageId ?? '?'} is not a Ferry job: ${describeBody(body ?? '')}`);
  }
  return value as Job;
}

function toDelivery(m: { MessageId?: string; ReceiptHandle?: string; Body?: string; Attributes?: Record<string, string> }):
  | Delivery
  | undefined {
  if (!m.ReceiptHandle) return undefined;
  try {
    return {
      job: decodeJob(m.Body, m.MessageId),
      receipt: m.ReceiptHandle,
      receiveCount: parseReceiveCount(m.Attributes?.ApproximateReceiveCount, m.MessageId),
    };
  } catch {
    return undefined;
  }
}

function parseReceiveCount(value: string | undefined, messageId: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`SQS message ${messageId ?? '?'} has no valid ApproximateReceiveCount (${String(value)})`);
  }
  return n;
}

/** Split bodies into SendMessageBatch requests: at most 10 entries and SQS_MAX_MESSAGE_BYTES per request. */
function toBatches(bodies: string[]): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = Buffer.byteLength(body, 'utf8');
    if (batch.length === MAX_BATCH_ENTRIES || (batch.length > 0 && bytes + size > SQS_MAX_MESSAGE_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(body);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Milliseconds to SQS's whole seconds, rounded up so nothing becomes visible earlier than asked. */
function toSeconds(name: string, ms: number): number {
  checkDuration(name, ms);
  const seconds = Math.ceil(ms / 1000);
  if (seconds > MAX_VISIBILITY_SECONDS) {
    throw new RangeError(`${name} of ${ms} ms exceeds SQS's limit of ${MAX_VISIBILITY_SECONDS} s`);
  }
  return seconds;
}

function checkDuration(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${ms}`);
}

/**
 * SQS reports a receipt whose delivery has ended in several ways: MessageNotInflight (and fauxqs), an
 * InvalidParameterValue naming the ReceiptHandle (ChangeMessageVisibility on AWS), ReceiptHandleIsInvalid (an
 * expired handle). DeleteMessage with a stale handle usually just succeeds.
 */
function isStaleReceiptError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { Code?: unknown }).Code;
  const names = [err.name, typeof code === 'string' ? code.replace(/^AWS\.SimpleQueueService\./, '') : ''];
  if (names.some((n) => n === 'MessageNotInflight' || n === 'ReceiptHandleIsInvalid')) return true;
  return names.includes('InvalidParameterValue') && /receipt ?handle/i.test(err.message);
}

function describeBody(body: string): string {
  return body.length > 120 ? `${body.slice(0, 120)}… (${body.length} chars)` : body;
}
