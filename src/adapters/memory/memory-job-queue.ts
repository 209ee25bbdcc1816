import { randomUUID } from 'node:crypto';
import type { Delivery, JobQueue } from '../../core/ports/job-queue.js';
import type { Job } from '../../core/model.js';

/**
 * In-process JobQueue for the local runner, with the visibility semantics of an SQS standard queue so that the
 * runner exercises the same redelivery paths as the AWS runtime. Not durable: the runner re-enqueues unfinished
 * jobs from the state store when it starts.
 *
 * Every message is either *ready* (visible) or *in flight* (hidden behind a receipt, with a timer that makes it
 * ready again). A receipt is valid from its receive until the message becomes ready again or is acked; after that
 * ack/retry/extend with it are no-ops, as the port allows for stale receipts. Retry with a delay keeps the message
 * in flight (same receipt) until the delay ends, like ChangeMessageVisibility does in SQS.
 *
 * No polling: waiting receivers are served the moment enqueue, retry or a visibility timer makes a message ready.
 */

/** setTimeout fires at once for longer delays (~24.8 days); nothing sensible waits that long anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Message {
  /** The job as JSON text: each delivery parses a fresh copy, and the caller cannot mutate what is queued. */
  body: string;
  receiveCount: number;
  /** Set while in flight: the receipt of the current delivery and the timer that ends its invisibility. */
  receipt?: string;
  timer?: NodeJS.Timeout;
}

interface Waiter {
  max: number;
  visibilityMs: number;
  resolve(deliveries: Delivery[]): void;
  timer: NodeJS.Timeout;
}

export class MemoryJobQueue implements JobQueue {
  /** Ready messages in the order they became ready; a Set gives O(1) removal from the front. */
  readonly #ready = new Set<Message>();
  readonly #inFlight = new Map<string, Message>();
  /** Receivers waiting for a message, served first come first served. */
  #waiters: Waiter[] = [];
  #closed = false;

  async enqueue(jobs: Job[]): Promise<void> {
    this.#assertOpen('enqueue');
    // Serialize everything first so a job that is not JSON leaves the queue untouched.
    const bodies = jobs.map((job) => JSON.stringify(job));
    for (const body of bodies) this.#ready.add({ body, receiveCount: 0 });
    this.#serveWaiters();
  }

  receive(max: number, visibilityMs: number, waitMs: number): Promise<Delivery[]> {
    try {
      this.#assertOpen('receive');
      checkReceiveArgs(max, visibilityMs, waitMs);
    } catch (err) {
      return Promise.reject(err);
    }
    const now = this.#take(max, visibilityMs);
    if (now.length > 0 || waitMs === 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        max,
        visibilityMs,
        resolve,
        // Not unref'd: someone is awaiting this promise, and the wait is bounded by waitMs anyway.
        timer: setTimeout(() => {
          this.#waiters = this.#waiters.filter((w) => w !== waiter);
          resolve([]);
        }, Math.min(waitMs, MAX_TIMER_MS)),
      };
      this.#waiters.push(waiter);
    });
  }

  async ack(receipt: string): Promise<void> {
    const message = this.#inFlight.get(receipt);
    if (!message) return; // stale or already acked
    clearTimeout(message.timer);
    this.#inFlight.delete(receipt);
  }

  async retry(receipt: string, delayMs: number): Promise<void> {
    checkDuration('delayMs', delayMs);
    this.#hide(receipt, delayMs);
  }

  async extend(receipt: string, visibilityMs: number): Promise<void> {
    checkDuration('visibilityMs', visibilityMs);
    this.#hide(receipt, visibilityMs);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const message of this.#inFlight.values()) clearTimeout(message.timer);
    this.#inFlight.clear();
    this.#ready.clear();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve([]);
    }
  }

  /** Re-time the invisibility of an in-flight message from now; 0 makes it ready at once. */
  #hide(receipt: string, ms: number): void {
    const message = this.#inFlight.get(receipt);
    if (!message) return; // stale: the message is already ready again, redelivered, or acked
    clearTimeout(message.timer);
    if (ms === 0) {
      this.#release(receipt);
      return;
    }
    message.timer = this.#timer(() => this.#release(receipt), ms);
  }

  /** Move at most `max` ready messages in flight and hand them out. */
  #take(max: number, visibilityMs: number): Delivery[] {
    const deliveries: Delivery[] = [];
    for (const message of this.#ready) {
      if (deliveries.length >= max) break;
      this.#ready.delete(message);
      const receipt = randomUUID();
      message.receiveCount += 1;
      message.receipt = receipt;
      message.timer = this.#timer(() => this.#release(receipt), visibilityMs);
      this.#inFlight.set(receipt, message);
      deliveries.push({ job: JSON.parse(message.body) as Job, receipt, receiveCount: message.receiveCount });
    }
    return deliveries;
  }

  /** End an in-flight delivery without acking it: the message becomes ready and its receipt stale. */
  #release(receipt: string): void {
    const message = this.#inFlight.get(receipt);
    if (!message) return;
    this.#inFlight.delete(receipt);
    clearTimeout(message.timer);
    delete message.receipt;
    delete message.timer;
    this.#ready.add(message);
    this.#serveWaiters();
  }

  #serveWaiters(): void {
    while (this.#waiters.length > 0 && this.#ready.size > 0) {
      const waiter = this.#waiters.shift()!;
      clearTimeout(waiter.timer);
      waiter.resolve(this.#take(waiter.max, waiter.visibilityMs));
    }
  }

  /**
   * Visibility timers are unref'd: an in-flight message nobody is waiting for must not keep the process alive
   * (close() clears them too, but a runner that crashes out of its loop should still exit).
   */
  #timer(fn: () => void, ms: number): NodeJS.Timeout {
    const timer = setTimeout(fn, Math.min(ms, MAX_TIMER_MS));
    timer.unref();
    return timer;
  }

  #assertOpen(op: string): void {
    if (this.#closed) throw new Error(`MemoryJobQueue.${op}: the queue is closed`);
  }
}

function checkReceiveArgs(max: number, visibilityMs: number, waitMs: number): void {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`receive: max must be an integer >= 1, got ${max}`);
  checkDuration('visibilityMs', visibilityMs);
  checkDuration('waitMs', waitMs);
}

function checkDuration(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${ms}`);
}
