/**
 * The copy-range Lambda's work: a batch of SQS records, processed one after another within the Lambda's time,
 * each mapped to one settled result (fulfilled: delete the message; rejected: report it as a batch item failure,
 * so SQS delivers it again). The same processJob as the local runner does the copying.
 */
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import { jobFromSqsRecord } from '../../adapters/sqs/sqs-job-queue.js';
import { parseConfig } from '../../config/load.js';
import { tableKey, type FlowRecord, type TableSchema } from '../../core/model.js';
import { silentProgress, type ProgressSink } from '../../core/progress.js';
import { processJob, retryDelayMs } from '../../core/snapshot/process-job.js';
import type { AwsContext } from './context.js';

export interface SqsRecordLike {
  messageId: string;
  receiptHandle: string;
  body: string;
  attributes: { ApproximateReceiveCount: string };
}

export interface CopyBatchOptions {
  /** Milliseconds this invocation has left (Lambda context.getRemainingTimeInMillis). */
  remainingMs: () => number;
  /** Stop starting chunks this long before the Lambda's end, leaving time to commit, record and re-enqueue. */
  marginMs?: number;
  owner: string;
  progress?: ProgressSink;
}

/** Kept across invocations of one Lambda container: connection pools and flow records stay warm. */
export class CopyWorker {
  private adapters: { source: PgSnapshotSource; target: PgSnapshotTarget } | undefined;
  private readonly flows = new Map<string, { flow: FlowRecord; tables: Map<string, TableSchema> }>();

  constructor(private readonly ctx: AwsContext) {}

  private connect() {
    if (!this.adapters) {
      const { sourceUrl, targetUrl } = this.ctx.settings;
      const config = parseConfig({ source: { url: sourceUrl }, target: { url: targetUrl } }, {}, 'deployment secrets');
      this.adapters = {
        source: new PgSnapshotSource(config.source, { connections: 2 }),
        target: new PgSnapshotTarget(config.target, { connections: 2 }),
      };
    }
    return this.adapters;
  }

  private async flow(id: string) {
    let f = this.flows.get(id);
    if (!f) {
      const flow = await this.ctx.store.getFlow(id);
      if (!flow) throw new Error(`flow ${id} is not in the state store`);
      f = { flow, tables: new Map(flow.tables.map((t) => [tableKey(t.source), t])) };
      this.flows.set(id, f);
    }
    return f;
  }

  async run(records: SqsRecordLike[], opts: CopyBatchOptions): Promise<PromiseSettledResult<string>[]> {
    const results: PromiseSettledResult<string>[] = [];
    for (const record of records) {
      try {
        results.push({ status: 'fulfilled', value: await this.one(record, opts) });
      } catch (err) {
        results.push({ status: 'rejected', reason: err });
      }
    }
    return results;
  }

  private async one(record: SqsRecordLike, opts: CopyBatchOptions): Promise<string> {
    const margin = opts.marginMs ?? 60_000;
    const delivery = jobFromSqsRecord(record);
    const { job } = delivery;
    if (opts.remainingMs() < margin * 1.5) throw new Error('not started: too little time left in this invocation');
    const { flow, tables } = await this.flow(job.flow);
    const summary = flow.summary as { batchRows?: number; maxAttempts?: number };
    const maxAttempts = summary.maxAttempts ?? 5;
    const store = this.ctx.store;
    // A delivery past the last attempt (the previous one died without recording it): fail the job for good.
    if (delivery.receiveCount > maxAttempts) {
      await store.failJob(job.flow, job.id, `gave up after ${maxAttempts} deliveries without completing`, true);
      return 'failed';
    }
    const { source, target } = this.connect();
    const outcome = await processJob({ source, target, store, progress: opts.progress ?? silentProgress, tables }, job, delivery.receiveCount, {
      owner: opts.owner,
      batchRows: summary.batchRows ?? 50_000,
      deadline: Date.now() + opts.remainingMs() - margin,
      maxAttempts,
      leaseMs: 15 * 60_000,
    });
    switch (outcome.kind) {
      case 'yielded':
        await this.ctx.queue!.enqueue([outcome.continuation]);
        return 'yielded';
      case 'retry':
        // Back off before the next delivery; the failure report then returns the message to the queue.
        await this.ctx.queue?.retry(delivery.receipt, retryDelayMs(delivery.receiveCount)).catch(() => {});
        throw new Error(outcome.error);
      default:
        return outcome.kind;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.adapters?.source.close(), this.adapters?.target.close()]);
    this.adapters = undefined;
  }
}
