/**
 * One job's range on a MongoDB target. Exactly-once per chunk, like the PostgreSQL writer: the job's progress marker
 * document in `_ferry` carries a lease (`lockedBy`/`lockedUntil`), so a second delivery of the same job waits until
 * the first commits or its lease runs out, then starts from the cursor it committed. Within a chunk:
 * - bounds of a MongoDB source (`mongo-id`): delete the chunk's `_id` range, then upsert the documents;
 * - bounds of another engine (`foreign`): ordered bulk upserts by `_id` only (those bounds are not `_id` ranges).
 * Either way a repeated chunk leaves one copy of each document. Writes are acknowledged by a majority (the client's
 * write concern) before the marker moves, so a recorded cursor never points past documents a failover could lose.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { BSON, type AnyBulkWriteOperation, type Collection, type Document } from 'mongodb';
import { MONGO_DOCS } from '../../core/codec/ejson.js';
import { FerryError } from '../../core/errors.js';
import type { Json } from '../../core/model.js';
import type { RowStream } from '../../core/ports/source.js';
import type { CopyStats, RangeWriter } from '../../core/ports/target.js';
import { asMongoRange, rangeFilter } from './ranges.js';

const LEASE_MS = 60_000;
const BULK_DOCS = 1000;
const BULK_BYTES = 8 << 20;

/** `cursor` is JSON text: a bound's canonical EJSON has `$`-keys, which a stored document should not. */
type Marker = { _id: string; cursor: string | null; done: boolean; rows: number; bytes: number; lockedBy?: string; lockedUntil?: number };

export async function openMongoRangeWriter(markers: Collection, coll: Collection, flow: string, jobId: string): Promise<RangeWriter> {
  const id = `snapshot/${flow}/${jobId}`;
  const me = randomUUID();
  const waitUntil = Date.now() + LEASE_MS * 2;
  for (;;) {
    const now = Date.now();
    try {
      const doc = (await markers.findOneAndUpdate(
        { _id: id as never, $or: [{ lockedUntil: { $lt: now } }, { lockedUntil: { $exists: false } }] },
        { $set: { lockedBy: me, lockedUntil: now + LEASE_MS }, $setOnInsert: { cursor: null, done: false, rows: 0, bytes: 0 } },
        { upsert: true, returnDocument: 'after', promoteValues: true },
      )) as Marker | null;
      if (doc) return new MongoRangeWriter(markers, coll, id, me, doc);
    } catch (err) {
      // The filter missed because another delivery holds the lease, and the upsert hit the existing _id.
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    if (Date.now() > waitUntil) throw new FerryError(`job ${jobId} of flow ${flow} is held by another delivery on the MongoDB target for too long`);
    await sleep(500);
  }
}

class MongoRangeWriter implements RangeWriter {
  private pending: CopyStats = { rows: 0, bytes: 0 };
  committed: CopyStats;

  constructor(
    private readonly markers: Collection,
    private readonly coll: Collection,
    private readonly id: string,
    private readonly me: string,
    private marker: Marker,
  ) {
    this.committed = { rows: Number(marker.rows ?? 0), bytes: Number(marker.bytes ?? 0) };
  }

  get cursor(): Json {
    return this.marker.cursor == null ? null : (JSON.parse(this.marker.cursor) as Json);
  }

  get done(): boolean {
    return this.marker.done === true;
  }

  /**
   * Extend the lease, or stop: a delivery that stalled past its lease (another took the job over and may have
   * committed this very chunk) must not delete or write anything more. Checked before the range delete and after
   * every bulk write, so a stale delivery never deletes documents a newer one has committed.
   */
  private async renew(): Promise<void> {
    const r = await this.markers.updateOne({ _id: this.id as never, lockedBy: this.me }, { $set: { lockedUntil: Date.now() + LEASE_MS } });
    if (r.matchedCount !== 1) throw new FerryError(`the lease on ${this.id} was taken over by another delivery; this one stops (its writes converge)`);
  }

  async write(boundsJson: Json, input: RowStream): Promise<CopyStats> {
    if (input.format !== MONGO_DOCS) {
      input.stream.destroy();
      throw new Error(`MongoDB target cannot load rows in format ${input.format}`);
    }
    const kind = (boundsJson as { kind?: string } | null)?.kind;
    try {
      await this.renew();
    } catch (err) {
      input.stream.destroy();
      throw err;
    }
    if (kind !== 'foreign') await this.coll.deleteMany(rangeFilter(asMongoRange(boundsJson)));
    let ops: AnyBulkWriteOperation[] = [];
    let opBytes = 0;
    const stats: CopyStats = { rows: 0, bytes: 0 };
    const flush = async () => {
      if (!ops.length) return;
      await this.coll.bulkWrite(ops, { ordered: true });
      ops = [];
      opBytes = 0;
      await this.renew();
    };
    for await (const doc of input.stream as AsyncIterable<Document>) {
      if (doc._id === undefined) throw new FerryError('a document without _id reached the MongoDB target (its table has no key)');
      const size = BSON.calculateObjectSize(doc);
      ops.push({ replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } });
      opBytes += size;
      stats.rows++;
      stats.bytes += size;
      if (ops.length >= BULK_DOCS || opBytes >= BULK_BYTES) await flush();
    }
    await flush();
    this.pending = stats;
    return stats;
  }

  async commit(next: Json): Promise<void> {
    const r = await this.markers.updateOne(
      { _id: this.id as never, lockedBy: this.me },
      { $set: { cursor: next === null ? null : JSON.stringify(next), done: next === null, lockedUntil: 0 }, $inc: { rows: this.pending.rows, bytes: this.pending.bytes } },
    );
    if (r.matchedCount !== 1) throw new FerryError(`the lease on ${this.id} was taken over by another delivery; this one stops (its writes converge)`);
    this.committed = { rows: this.committed.rows + this.pending.rows, bytes: this.committed.bytes + this.pending.bytes };
    this.pending = { rows: 0, bytes: 0 };
    this.marker = { ...this.marker, cursor: next === null ? null : JSON.stringify(next), done: next === null };
  }

  async release(): Promise<void> {
    await this.markers.updateOne({ _id: this.id as never, lockedBy: this.me }, { $set: { lockedUntil: 0 } }).catch(() => {});
  }
}
