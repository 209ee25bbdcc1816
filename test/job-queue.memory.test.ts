import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryJobQueue } from '../src/adapters/memory/memory-job-queue.js';
import { jobQueueContract, makeJob } from './contracts/job-queue.contract.js';

// Millisecond timers: the contract's checks on a quarter-second unit instead of SQS's whole second.
jobQueueContract('MemoryJobQueue', async () => {
  const queue = new MemoryJobQueue();
  return { queue, cleanup: () => queue.close() };
}, { unitMs: 250, earlyMs: 50 });

describe('MemoryJobQueue', () => {
  it('hands out a copy: mutating a delivered or enqueued job does not change the queued one', async () => {
    const queue = new MemoryJobQueue();
    const job = makeJob(1);
    await queue.enqueue([job]);
    job.attempt = 99;
    const [d] = await queue.receive(1, 30_000, 0);
    expect(d!.job.attempt).toBe(0);
    d!.job.attempt = 7;
    await queue.retry(d!.receipt, 0);
    const [again] = await queue.receive(1, 30_000, 0);
    expect(again!.job).toEqual(makeJob(1));
    await queue.close();
  });

  it('serves several waiting receivers in turn', async () => {
    const queue = new MemoryJobQueue();
    const a = queue.receive(2, 30_000, 5000);
    const b = queue.receive(2, 30_000, 5000);
    await queue.enqueue([1, 2, 3].map((n) => makeJob(n)));
    expect((await a).map((d) => d.job.id)).toEqual([makeJob(1).id, makeJob(2).id]);
    expect((await b).map((d) => d.job.id)).toEqual([makeJob(3).id]);
    await queue.close();
  });

  it('does not keep the process alive once closed, nor for jobs in flight', () => {
    // A child process with a job in flight for a minute must still exit as soon as its work is done.
    // Under vitest, from the run's build of the sources (test/support/cli-build.ts): plain node, no tsx loader.
    const built = process.env.FERRY_PREBUILT_CLI ? dirname(process.env.FERRY_PREBUILT_CLI) : undefined;
    const script = `
      import { MemoryJobQueue } from './src/adapters/memory/memory-job-queue.${built ? 'js' : 'ts'}';
      const q = new MemoryJobQueue();
      await q.enqueue([{ flow: 'f', id: 'a', table: 't', range: null, cursor: null, attempt: 0 }]);
      await q.enqueue([{ flow: 'f', id: 'b', table: 't', range: null, cursor: null, attempt: 0 }]);
      const got = await q.receive(1, 60_000, 0);
      await q.retry(got[0].receipt, 60_000);
      const other = new MemoryJobQueue();
      await other.enqueue([{ flow: 'f', id: 'c', table: 't', range: null, cursor: null, attempt: 0 }]);
      await other.receive(1, 60_000, 0);
      await other.close();
      console.log('done');
    `;
    const t = Date.now();
    const child = spawnSync(process.execPath, [...(built ? [] : ['--import', 'tsx']), '--input-type=module', '-e', script], {
      cwd: built ?? new URL('..', import.meta.url).pathname,
      encoding: 'utf8',
      timeout: 25_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout.trim()).toBe('done');
    expect(Date.now() - t).toBeLessThan(20_000);
  });
});
