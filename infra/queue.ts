/**
 * RangeJobs: one message per range job (or per continuation of a job that yielded its cursor), consumed by the
 * CopyRange Lambda (functions.ts). Messages that keep failing past maxReceiveCount land in the dead-letter queue.
 */
import { settings } from './settings';

export const rangeJobsDlq = new sst.aws.Queue('RangeJobsDlq', {
  transform: {
    queue: { messageRetentionSeconds: settings.queue.retentionDays * 24 * 60 * 60 },
  },
});

export const rangeJobs = new sst.aws.Queue('RangeJobs', {
  visibilityTimeout: `${settings.queue.visibilityTimeoutMinutes} minutes`,
  dlq: { queue: rangeJobsDlq.arn, retry: settings.queue.maxReceiveCount },
  transform: {
    // Enqueue sends every job once, up front; with many ranges and modest concurrency the last ones wait days, and
    // SQS's default 4-day retention would silently drop them (the job would stay pending and the workflow poll on).
    queue: { messageRetentionSeconds: settings.queue.retentionDays * 24 * 60 * 60 },
  },
});
