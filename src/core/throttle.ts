/**
 * Throughput limits (config `limits`): a token bucket, and decorators that make a snapshot source or a change
 * target wait for it. Waiting is a timer, never a busy loop: the event loop keeps serving every other worker.
 *
 * The bucket refills at `rate` tokens a second up to `burst`. `take(n)` waits until min(n, burst) tokens are there
 * and then takes all n (the balance may go below zero: a chunk bigger than the burst is paid for by the waits that
 * follow), so over any long run at most burst + rate × seconds tokens pass. Takers are served in arrival order,
 * so workers sharing one bucket share it fairly.
 */
import { Transform } from 'node:stream';
import type { Json, PlannedRange, TableSchema } from './model.js';
import type { Chunk, RowStream, SequenceValue, Selection, SnapshotSource } from './ports/source.js';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

export class TokenBucket {
  readonly burst: number;
  private tokens: number;
  private last: number;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly rate: number,
    opts: { burst?: number; clock?: Clock } = {},
  ) {
    if (!(rate > 0)) throw new Error(`a token bucket needs a positive rate, not ${rate}`);
    this.clock = opts.clock ?? realClock;
    // A tenth of a second's worth by default: small enough that the limit holds over short runs too.
    this.burst = Math.max(1, opts.burst ?? rate / 10);
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  private readonly clock: Clock;

  /** Wait for `n` tokens (n ≤ 0: at once). */
  take(n: number): Promise<void> {
    if (!(n > 0)) return Promise.resolve();
    const turn = this.tail.then(() => this.acquire(n));
    this.tail = turn.catch(() => {});
    return turn;
  }

  /** Tokens there now (negative: owed). For tests and progress. */
  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  private async acquire(n: number): Promise<void> {
    const need = Math.min(n, this.burst);
    for (;;) {
      this.refill();
      if (this.tokens >= need) {
        this.tokens -= n;
        return;
      }
      await this.clock.sleep(Math.max(1, Math.ceil(((need - this.tokens) / this.rate) * 1000)));
    }
  }
}

export interface SnapshotLimits {
  snapshotRowsPerSecond?: number;
  snapshotBytesPerSecond?: number;
}

/**
 * The snapshot limits for one process. `share` divides them (AWS: each copy function gets limit / copy
 * concurrency, since the functions share no memory). Undefined when there is no limit.
 */
export function snapshotBuckets(limits: SnapshotLimits | undefined, share = 1, clock?: Clock): { rows?: TokenBucket; bytes?: TokenBucket } | undefined {
  const rows = limits?.snapshotRowsPerSecond;
  const bytes = limits?.snapshotBytesPerSecond;
  if (!rows && !bytes) return undefined;
  const n = Math.max(1, share);
  return {
    ...(rows ? { rows: new TokenBucket(rows / n, { clock }) } : {}),
    // Bytes arrive in stream buffers of up to 64 kB: the burst must hold one.
    ...(bytes ? { bytes: new TokenBucket(bytes / n, { clock, burst: Math.max(bytes / n / 10, 65_536) }) } : {}),
  };
}

/**
 * A snapshot source whose reads wait for the buckets. Rows: a chunk is capped at the bucket's burst (about a tenth of
 * a second's rows, so at 1,000 rows/s chunks of 100 rows, each its own target transaction) and
 * its row budget is taken before it is read (a chunk that turns out smaller, the end of a range or rows the filter
 * drops, is still charged in full: the limit is an upper bound). Bytes: each buffer of the COPY stream waits for
 * its size before it is passed on, so the source read itself slows down (backpressure), not just the target.
 */
export function throttledSource(inner: SnapshotSource, buckets: { rows?: TokenBucket; bytes?: TokenBucket } | undefined): SnapshotSource {
  if (!buckets) return inner;
  const { rows, bytes } = buckets;
  return {
    capabilities: inner.capabilities,
    // The source's exact start snapshot must reach the reads through the wrapper.
    ...(inner.useSnapshot ? { useSnapshot: (handle: Parameters<NonNullable<SnapshotSource['useSnapshot']>>[0]) => inner.useSnapshot!(handle) } : {}),
    describe: (selection: Selection): Promise<TableSchema[]> => inner.describe(selection),
    planRanges: (table: TableSchema, rowsPerRange: number): Promise<PlannedRange[]> => inner.planRanges(table, rowsPerRange),
    async nextChunk(table: TableSchema, range: Json, cursor: Json, maxRows: number): Promise<Chunk> {
      if (!rows) return inner.nextChunk(table, range, cursor, maxRows);
      // At most the burst per chunk (a tenth of a second's rows): then no chunk runs ahead of the limit by more.
      const capped = Math.max(1, Math.min(maxRows, Math.floor(rows.burst)));
      await rows.take(capped);
      return inner.nextChunk(table, range, cursor, capped);
    },
    async read(table: TableSchema, bounds: Json, accepted: readonly string[]): Promise<RowStream> {
      const out = await inner.read(table, bounds, accepted);
      if (!bytes) return out;
      const paced = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes.take(chunk.length).then(() => done(null, chunk), done);
        },
      });
      out.stream.on('error', (err) => paced.destroy(err));
      paced.on('close', () => {
        if (!out.stream.readableEnded) out.stream.destroy();
      });
      return { format: out.format, stream: out.stream.pipe(paced) };
    },
    sequences: (tables: TableSchema[]): Promise<SequenceValue[]> => inner.sequences(tables),
    close: () => inner.close(),
  };
}
