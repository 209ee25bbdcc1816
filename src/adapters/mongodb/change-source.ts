/**
 * ChangeSource for MongoDB, over a change stream (the logic; the driver part is behind MongoStreamServer, port.ts).
 *
 * `prepare` opens a change stream and takes its resume token (the postBatchResumeToken of the first reply) before any
 * range is read: every write after it is replayed after the snapshot, as converging writes (events.ts), so ranges
 * read at different times (majority read concern, no common snapshot) converge to the source's state.
 *
 * MongoDB keeps no per-consumer state (no slot): `acknowledge` and `cleanup` have nothing to do, and the oplog's
 * window is the only limit on how long a flow may pause (preflight checks it; error 286 says it was exceeded).
 */
import { MONGO_CHANGE_SOURCE_CAPABILITIES } from './capabilities.js';
import { FerryError } from '../../core/errors.js';
import { documentToImage, fromCanonical } from '../../core/codec/ejson.js';
import { tableKey, type Position, type TableSchema } from '../../core/model.js';
import type { ChangeSource, LagInfo, RowImage, StartPoint, StreamEvent } from '../../core/ports/change-source.js';
import type { ChangeStreamCursor, FullDocumentMode, MongoStreamServer } from './stream/port.js';
import { asMongoPosition, clusterTimeOfToken, compareMongoPositions, positionOfToken, type MongoPosition } from './stream/positions.js';
import { ChangeStreamReader } from './stream/reader.js';
import { translateStreamError } from './stream/errors.js';

export class MongoChangeSource implements ChangeSource {
  readonly capabilities = MONGO_CHANGE_SOURCE_CAPABILITIES;
  private mode: FullDocumentMode | undefined;

  constructor(private readonly server: MongoStreamServer) {}

  async preflight(_flow: string, tables: TableSchema[]): Promise<void> {
    this.mode = await this.server.preflight(tables);
  }

  private async fullDocument(tables: TableSchema[]): Promise<FullDocumentMode> {
    return (this.mode ??= await this.server.preflight(tables));
  }

  /** The stream's position now: a fresh cursor's postBatchResumeToken. */
  private async positionNow(tables: TableSchema[]): Promise<MongoPosition> {
    const cursor = await this.server.open({ collections: tables.map((t) => t.source), fullDocument: await this.fullDocument(tables) });
    try {
      const first = await cursor.next();
      const token = first.postBatchResumeToken ?? (first.events.at(-1)?._id as { _data: string } | undefined);
      if (!token) throw new FerryError('the MongoDB server sent no resume token with its first change stream reply (MongoDB 4.2 or later is needed)');
      return positionOfToken(token);
    } catch (err) {
      throw translateStreamError(err);
    } finally {
      await cursor.close().catch(() => {});
    }
  }

  async prepare(_flow: string, tables: TableSchema[], _opts: { resuming: boolean }): Promise<StartPoint> {
    // Resuming, the caller keeps its checkpoint; a fresh flow records this one before reading any range.
    this.lastTables = tables;
    const position = await this.positionNow(tables);
    // Before any range is read, the majority snapshot must include everything up to the token (port.ts says why).
    const at = clusterTimeOfToken(position.token);
    if (at) await this.server.awaitMajority(tables.map((t) => t.source), at).catch((err: unknown) => Promise.reject(translateStreamError(err)));
    return { position, snapshot: null };
  }

  async releaseSnapshot(): Promise<void> {}

  async stream(
    _flow: string,
    tables: TableSchema[],
    from: Position,
    onEvents: (events: StreamEvent[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const start = asMongoPosition(from);
    this.lastTables = tables;
    const reader = new ChangeStreamReader({ selected: new Set(tables.map((t) => tableKey(t.source))) });
    let cursor: ChangeStreamCursor;
    try {
      cursor = await this.server.open({ collections: tables.map((t) => t.source), resumeAfter: start.token, fullDocument: await this.fullDocument(tables) });
    } catch (err) {
      throw translateStreamError(err);
    }
    // Closing the cursor ends a getMore waiting on the server.
    const onAbort = () => void cursor.close().catch(() => {});
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        let batch;
        try {
          batch = await cursor.next();
        } catch (err) {
          if (signal.aborted) break;
          throw translateStreamError(err);
        }
        const events = reader.read(batch);
        if (events.length) await onEvents(events);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await cursor.close().catch(() => {});
    }
  }

  async acknowledge(_position: Position): Promise<void> {}

  async fetchRows(table: TableSchema, keys: RowImage[]): Promise<RowImage[]> {
    const ids = keys.map((k) => (k._id == null ? null : fromCanonical(k._id)));
    return (await this.server.find(table.source, ids)).map(documentToImage);
  }

  async currentPosition(): Promise<Position> {
    if (!this.lastTables) throw new FerryError('currentPosition before the stream knows its collections');
    return this.positionNow(this.lastTables);
  }

  private lastTables: TableSchema[] | undefined;

  /** The collections `currentPosition` watches (set by the composition root; `stream` sets it too). */
  useTables(tables: TableSchema[]): void {
    this.lastTables = tables;
  }

  compare(a: Position, b: Position): number {
    return compareMongoPositions(a, b);
  }

  async lag(_flow: string): Promise<LagInfo | undefined> {
    return undefined;
  }

  async cleanup(_flow: string): Promise<void> {}

  async close(): Promise<void> {
    await this.server.close();
  }
}
