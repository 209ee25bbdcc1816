import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/core/model.js';
import type { Delivery, JobQueue } from '../../src/core/ports/job-queue.js';

/**
 * The JobQueue contract, run against every adapter. Each test gets a fresh, empty queue.
 *
 * Timing: visibility is 1 s (SQS counts whole seconds). Timed assertions only fail on what the contract forbids:
 * a job that shows up *earlier* than its hidden period (minus a small tolerance for the time between the server's
 * clock and ours), or a wait that never ends. Upper bounds are generous so a loaded 2-core machine passes.
 * Redelivery times are measured with a long poll started right after the action, so the arrival time is the moment
 * the job became visible again: that proves it was hidden until then without racing a short window.
 *
 * Decisions the port leaves open, fixed here:
 * - ack, retry and extend with a stale receipt (its delivery ended: redelivered, acked, retry(0)) resolve and do
 *   not throw. Whether a stale ack still deletes is up to the backend (SQS may); consumers are idempotent.
 * - receive(max < 1) rejects with RangeError.
 * - close() is idempotent, resolves a pending receive with [], and enqueue/receive afterwards reject.
 * - Order of delivery is not part of the contract (SQS standard queues do not keep it).
 */

const VIS = 1000;
/** A hidden job may surface this much earlier than our own clock says (request latency, clock granularity). */
const EARLY = 150;
/** Waits that are long enough for anything that should happen, on a slow machine. */
const PATIENCE = 8000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function makeJob(n: number, extra: Partial<Job> = {}): Job {
  return {
    flow: 'flow-1',
    id: `public.orders#${n}`,
    table: 'public.orders',
    range: { kind: 'pk', lower: [n * 1000, 'a\u00e9'], upper: { incl: false, key: [(n + 1) * 1000, null] } },
    cursor: n % 2 === 0 ? null : { after: [n * 1000 + 17, 'Z\u00fcrich \u6771\u4eac'], rows: 17, nested: [[[]], {}] },
    attempt: 0,
    ...extra,
  };
}

/** Strings that trip naive encoders: astral emoji, combining marks, line separators, non-characters, lone surrogate. */
const UNICODE = 'caf\u00e9 e\u0301 \u6771\u4eac \ud83d\ude80\ud83e\udd80 \u2028\u2029 \u0000\u001f \ufffe\uffff \ud800 "q" \\ /';

/** Receive until `n` deliveries arrived or PATIENCE ran out. */
async function collect(queue: JobQueue, n: number, visibilityMs = 30_000): Promise<Delivery[]> {
  const out: Delivery[] = [];
  const deadline = Date.now() + PATIENCE;
  while (out.length < n && Date.now() < deadline) {
    out.push(...(await queue.receive(Math.min(10, n - out.length), visibilityMs, 1000)));
  }
  return out;
}

/** Long-poll for the next delivery; returns it and when it arrived. */
async function next(queue: JobQueue, visibilityMs = VIS): Promise<{ delivery: Delivery; at: number }> {
  const deadline = Date.now() + PATIENCE;
  while (Date.now() < deadline) {
    const [delivery] = await queue.receive(1, visibilityMs, 2000);
    if (delivery) return { delivery, at: Date.now() };
  }
  throw new Error(`no delivery within ${PATIENCE} ms`);
}

/**
 * The contract's time unit: SQS counts visibility and long polls in whole seconds, so 1 s there (the default);
 * a queue with millisecond timers (the in-memory one) runs the same checks on a shorter unit, each bound scaled.
 */
export interface ContractTiming {
  /** Visibility timeout, retry delay and empty-receive wait; extend uses twice this. */
  unitMs: number;
  /** How much earlier than our clock a hidden job may surface. */
  earlyMs: number;
}

export function jobQueueContract(
  name: string,
  make: () => Promise<{ queue: JobQueue; cleanup(): Promise<void> }>,
  timing: ContractTiming = { unitMs: VIS, earlyMs: EARLY },
): void {
  const VIS = timing.unitMs;
  const EARLY = timing.earlyMs;
  describe(`JobQueue contract: ${name}`, () => {
    let queue: JobQueue;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ queue, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('delivers an enqueued job unchanged, with receiveCount 1 and a receipt', async () => {
      const job = makeJob(1, { table: `public.${UNICODE}`, cursor: { text: UNICODE, big: 9007199254740991, f: 0.1 } });
      await queue.enqueue([job]);
      const [d] = await collect(queue, 1);
      expect(d!.job).toEqual(job);
      expect(d!.receiveCount).toBe(1);
      expect(typeof d!.receipt).toBe('string');
      expect(d!.receipt.length).toBeGreaterThan(0);
    });

    it('enqueue of nothing is a no-op', async () => {
      await queue.enqueue([]);
      expect(await queue.receive(10, VIS, 0)).toEqual([]);
    });

    it('receive returns at most max jobs, and the others stay available', async () => {
      const jobs = [1, 2, 3, 4, 5].map((n) => makeJob(n));
      await queue.enqueue(jobs);
      const first = await queue.receive(2, 30_000, 2000);
      expect(first.length).toBeGreaterThanOrEqual(1);
      expect(first.length).toBeLessThanOrEqual(2);
      const rest = await collect(queue, 5 - first.length);
      const all = [...first, ...rest].map((d) => d.job);
      expect(all).toHaveLength(5);
      expect(new Set(all.map((j) => j.id)).size).toBe(5);
      expect(all.sort((a, b) => a.id.localeCompare(b.id))).toEqual(jobs);
    });

    it('rejects max < 1', async () => {
      await expect(queue.receive(0, VIS, 0)).rejects.toThrow(RangeError);
    });

    it('hides a received job for visibilityMs, then redelivers it with receiveCount + 1', async () => {
      const job = makeJob(2);
      await queue.enqueue([job]);
      const first = await next(queue, VIS);
      const again = await next(queue, VIS);
      expect(again.at - first.at).toBeGreaterThanOrEqual(VIS - EARLY);
      expect(again.delivery.job).toEqual(job);
      expect(again.delivery.receiveCount).toBe(2);
      expect(again.delivery.receipt).not.toBe(first.delivery.receipt);
      const third = await next(queue, 30_000);
      expect(third.delivery.receiveCount).toBe(3);
    });

    it('ack removes the job for good', async () => {
      await queue.enqueue([makeJob(3)]);
      const { delivery } = await next(queue, VIS);
      await queue.ack(delivery.receipt);
      // Longer than the visibility timeout: an un-acked job would be back by then.
      expect(await queue.receive(10, VIS, 2 * VIS)).toEqual([]);
    });

    it('retry(receipt, 0) makes the job visible at once', async () => {
      await queue.enqueue([makeJob(4)]);
      const { delivery } = await next(queue, 30_000);
      const t = Date.now();
      await queue.retry(delivery.receipt, 0);
      const again = await next(queue, 30_000);
      expect(again.at - t).toBeLessThan(3000);
      expect(again.delivery.receiveCount).toBe(2);
      expect(again.delivery.job).toEqual(makeJob(4));
    });

    it('retry(receipt, delay) keeps the job hidden for the delay', async () => {
      await queue.enqueue([makeJob(5)]);
      const { delivery } = await next(queue, 30_000);
      const t = Date.now();
      await queue.retry(delivery.receipt, VIS);
      const again = await next(queue, 30_000);
      expect(again.at - t).toBeGreaterThanOrEqual(VIS - EARLY);
      expect(again.at - t).toBeLessThan(VIS + 4000);
      expect(again.delivery.receiveCount).toBe(2);
    });

    it('extend keeps the job hidden for another visibilityMs from now', async () => {
      await queue.enqueue([makeJob(6)]);
      const { delivery } = await next(queue, VIS);
      const t = Date.now();
      await queue.extend(delivery.receipt, 2 * VIS);
      const again = await next(queue, 30_000);
      // Without the extension it would be back VIS after the receive, i.e. before t + VIS.
      expect(again.at - t).toBeGreaterThanOrEqual(2 * VIS - EARLY);
      expect(again.delivery.receiveCount).toBe(2);
    });

    it('a waiting receive returns as soon as a job arrives', async () => {
      const t = Date.now();
      const waiting = queue.receive(10, VIS, 6000);
      await sleep(200);
      await queue.enqueue([makeJob(7)]);
      const got = await waiting;
      const elapsed = Date.now() - t;
      expect(got.map((d) => d.job)).toEqual([makeJob(7)]);
      expect(elapsed).toBeLessThan(3000);
    });

    it('a waiting receive also wakes up when a job becomes visible again', async () => {
      await queue.enqueue([makeJob(8)]);
      const { delivery } = await next(queue, 30_000);
      const waiting = queue.receive(10, 30_000, 6000);
      await sleep(200);
      const t = Date.now();
      await queue.retry(delivery.receipt, 0);
      const got = await waiting;
      expect(got).toHaveLength(1);
      expect(Date.now() - t).toBeLessThan(3000);
    });

    it('receive on an empty queue returns [] after about waitMs', async () => {
      const t = Date.now();
      expect(await queue.receive(10, VIS, VIS)).toEqual([]);
      const elapsed = Date.now() - t;
      expect(elapsed).toBeGreaterThanOrEqual(VIS - EARLY);
      expect(elapsed).toBeLessThan(4000);
      const t0 = Date.now();
      expect(await queue.receive(10, VIS, 0)).toEqual([]);
      expect(Date.now() - t0).toBeLessThan(1000);
    });

    it('enqueues more jobs than one SQS batch holds', async () => {
      const jobs = Array.from({ length: 25 }, (_, i) => makeJob(100 + i));
      await queue.enqueue(jobs);
      const got = await collect(queue, 25);
      expect(got).toHaveLength(25);
      const byId = new Map(got.map((d) => [d.job.id, d.job]));
      expect(byId.size).toBe(25);
      for (const job of jobs) expect(byId.get(job.id)).toEqual(job);
      for (const d of got) await queue.ack(d.receipt);
      expect(await queue.receive(10, VIS, 0)).toEqual([]);
    });

    it('ack, retry and extend with a stale receipt resolve; the current receipt still acks', async () => {
      await queue.enqueue([makeJob(9)]);
      const first = await next(queue, VIS);
      const second = await next(queue, 30_000);
      expect(second.delivery.receiveCount).toBe(2);
      const stale = first.delivery.receipt;
      await expect(queue.retry(stale, 0)).resolves.toBeUndefined();
      await expect(queue.extend(stale, VIS)).resolves.toBeUndefined();
      await expect(queue.ack(stale)).resolves.toBeUndefined();
      await queue.ack(second.delivery.receipt);
      // Acking twice, or after the job is gone, is harmless too.
      await expect(queue.ack(second.delivery.receipt)).resolves.toBeUndefined();
      await expect(queue.retry(second.delivery.receipt, 0)).resolves.toBeUndefined();
      expect(await queue.receive(10, VIS, 2 * VIS)).toEqual([]);
    });

    it('close resolves a pending receive with [] and refuses further work', async () => {
      const t = Date.now();
      const waiting = queue.receive(10, VIS, 5000);
      await sleep(200);
      await queue.close();
      expect(await waiting).toEqual([]);
      expect(Date.now() - t).toBeLessThan(3000);
      await queue.close();
      await expect(queue.enqueue([makeJob(10)])).rejects.toThrow(/closed/);
      await expect(queue.receive(1, VIS, 0)).rejects.toThrow(/closed/);
    });
  });
}
