/**
 * The copy-range Lambda's work: a batch of SQS records, processed one after another within the Lambda's time,
 * each mapped to one settled result (fulfilled: delete the message; rejected: report it as a batch item failure,
 * so SQS delivers it again). The same processJob as the local runner does the copying.
 */
import { openFlowAdapters, hasMongoEndpoint } from '../local/engines.js';
import type { SnapshotSource } from '../../core/ports/source.js';
import type { SnapshotTarget } from '../../core/ports/target.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import { jobFromSqsRecord } from '../../adapters/sqs/sqs-job-queue.js';
import { parseConfig } from '../../config/load.js';
import { tableKey, type FlowRecord, type TableSchema } from '../../core/model.js';
import { silentProgress, type ProgressSink } from '../../core/progress.js';
import { processJob, retryDelayMs } from '../../core/snapshot/process-job.js';
import { snapshotBuckets, throttledSource, type SnapshotLimits } from '../../core/throttle.js';
import type { AwsContext } from './context.js';
import { AWS_CONFIG } from './activities.js';

/** Connections one copy invocation opens to each database (the connection budget counts these). */
export const COPY_CONNECTIONS_PER_SIDE = 1;

/** 64 MB: a chunk is held in one target transaction; larger ones lengthen the retry after an abort. */
export const DEFAULT_BATCH_BYTES = 64 * 1024 * 1024;

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
  /** Abort a chunk still running this long before the Lambda's end (rolled back; the cursor is yielded). */
  abortMarginMs?: number;
  /** Cap on one chunk's bytes (rows are scaled down to fit). */
  batchBytes?: number;
  owner: string;
  progress?: ProgressSink;
  /**
   * The copy function's maximum concurrency (FERRY_COPY_CONCURRENCY): the flow's snapshot limits are split evenly
   * across that many functions, each holding limit / concurrency (they share no memory to pool one bucket).
   */
  copyConcurrency?: number;
}

/**
 * One per Lambda container. Flow records stay warm across invocations; connections do not: a container that Lambda
 * keeps warm but idle would otherwise hold them, and warm containers can outnumber the concurrency limit. So each
 * invocation opens one connection to each side and closes both before returning: a copy needs no more, and the
 * databases see at most `maxConcurrency` of each (what Validate checks against their free connections).
 */
export class CopyWorker {
  private adapters: { source: SnapshotSource; target: SnapshotTarget } | undefined;
  /** The MongoDB → PostgreSQL column mapping the open adapters were made with (JSON), for a MongoDB endpoint. */
  private adaptersMapping = '{}';
  private readonly flows = new Map<string, { flow: FlowRecord; tables: Map<string, TableSchema>; buckets: ReturnType<typeof snapshotBuckets>; mongoToPg: unknown }>();

  constructor(private readonly ctx: AwsContext) {}

  /**
   * `mongoToPg`: the flow's declared MongoDB → PostgreSQL columns, from the config Plan stored (the secrets hold only
   * the URLs): without it a MongoDB → PostgreSQL copy would write `(_id, doc)` rows into the mapped table.
   */
  private async connect(mongoToPg: unknown = undefined) {
    const mapping = JSON.stringify(mongoToPg ?? {});
    if (this.adapters && mapping !== this.adaptersMapping) await this.close();
    if (!this.adapters) {
      const { sourceUrl, targetUrl } = this.ctx.settings;
      const config = parseConfig(
        { source: { url: sourceUrl }, target: { url: targetUrl }, ...(mongoToPg !== undefined ? { mongoToPg } : {}) },
        {},
        'deployment secrets',
      );
      this.adaptersMapping = mapping;
      // A MongoDB endpoint (additive): the Lambda copies `_id` ranges through engines.ts's adapters and codecs.
      this.adapters = hasMongoEndpoint(config)
        ? openFlowAdapters(config, { cdc: false, warn: () => {}, heartbeatMs: 0 })
        : {
            source: new PgSnapshotSource(config.source, { connections: COPY_CONNECTIONS_PER_SIDE }),
            target: new PgSnapshotTarget(config.target, { connections: COPY_CONNECTIONS_PER_SIDE }),
          };
    }
    return this.adapters;
  }

  private async flow(id: string, share: number) {
    let f = this.flows.get(id);
    if (!f) {
      const flow = await this.ctx.store.getFlow(id);
      if (!flow) throw new Error(`flow ${id} is not in the state store`);
      const limits = (flow.summary as { limits?: SnapshotLimits } | null)?.limits;
      // One pair of buckets per container and flow: a warm container's invocations run one after another.
      // Only MongoDB → PostgreSQL flows have one (the config schema refuses it elsewhere).
      const stored = (await this.ctx.store.getCheckpoint(id, AWS_CONFIG)) as { mongoToPg?: unknown } | undefined;
      const mongoToPg = stored?.mongoToPg && Object.keys(stored.mongoToPg as object).length ? stored.mongoToPg : undefined;
      f = { flow, tables: new Map(flow.tables.map((t) => [tableKey(t.source), t])), buckets: snapshotBuckets(limits, share), mongoToPg };
      this.flows.set(id, f);
    }
    return f;
  }

  async run(records: SqsRecordLike[], opts: CopyBatchOptions): Promise<PromiseSettledResult<string>[]> {
    const results: PromiseSettledResult<string>[] = [];
    try {
      for (const record of records) {
        try {
          results.push({ status: 'fulfilled', value: await this.one(record, opts) });
        } catch (err) {
          results.push({ status: 'rejected', reason: err });
        }
      }
    } finally {
      await this.close();
    }
    return results;
  }

  private async one(record: SqsRecordLike, opts: CopyBatchOptions): Promise<string> {
    const margin = opts.marginMs ?? 60_000;
    const abortMargin = Math.min(margin, opts.abortMarginMs ?? 20_000);
    const delivery = jobFromSqsRecord(record);
    const { job } = delivery;
    // Less than this and even one chunk would be cut before it could commit. (One chunk always runs, however close
    // the no-new-chunk deadline; the abort bounds it.)
    if (opts.remainingMs() < abortMargin * 2) throw new Error('not started: too little time left in this invocation');
    const { flow, tables, buckets, mongoToPg } = await this.flow(job.flow, opts.copyConcurrency ?? 1);
    const summary = flow.summary as { batchRows?: number; maxAttempts?: number };
    const maxAttempts = summary.maxAttempts ?? 5;
    const store = this.ctx.store;
    // A delivery past the last attempt (the previous one died without recording it): fail the job for good.
    if (delivery.receiveCount > maxAttempts) {
      await store.failJob(job.flow, job.id, `gave up after ${maxAttempts} deliveries without completing`, true);
      return 'failed';
    }
    const { source: pgSource, target } = await this.connect(mongoToPg);
    const source = throttledSource(pgSource, buckets);
    const outcome = await processJob({ source, target, store, progress: opts.progress ?? silentProgress, tables }, job, delivery.receiveCount, {
      owner: opts.owner,
      batchRows: summary.batchRows ?? 50_000,
      deadline: Date.now() + opts.remainingMs() - margin,
      abortAt: Date.now() + opts.remainingMs() - abortMargin,
      batchBytes: opts.batchBytes ?? DEFAULT_BATCH_BYTES,
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
