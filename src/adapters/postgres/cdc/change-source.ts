/** ChangeSource for PostgreSQL: a publication and a pgoutput slot per flow, read with our own pgoutput decoder (pgoutput-stream.ts). */
import pg from 'pg';
import type { EndpointConfig } from '../../../config/schema.js';
import type { Position, TableSchema } from '../../../core/model.js';
import type { ChangeSource, LagInfo, RowImage, StartPoint, StreamEvent } from '../../../core/ports/change-source.js';
import { connect, pgEndpoint, type PgEndpoint } from '../connect.js';
import { copiedColumns } from '../copy-format.js';
import { columnList, ident, literal, qualified } from '../sql.js';
import { compareLsn, normalizeLsn } from './lsn.js';
import { HEARTBEAT_PREFIX, slotName } from './names.js';
import { ConnectionError, FerryError } from '../../../core/errors.js';
import { openReplicationStream } from './pgoutput-stream.js';
import { PgStreamParts } from './stream-hooks.js';
import type { StreamHooks } from '../../../core/cdc/evolve-contract.js';
import type { Selection } from '../../../core/ports/source.js';
import { checkReplicationSource } from './replication-preflight.js';
import { PG_CHANGE_SOURCE_CAPABILITIES } from '../capabilities.js';
import { createSlotWithSnapshot, dropSlotAndPublication, ensurePublication, findSlot, slotLag } from './slot.js';

export interface PgChangeSourceOptions {
  /** How often a heartbeat message is written to the WAL, so an idle slot advances and lag is measured. */
  heartbeatMs?: number;
  warn?: (message: string) => void;
  /**
   * Stream large transactions while they are in progress (pgoutput protocol 2, `streaming 'on'`, PostgreSQL 14+;
   * older servers fall back to protocol 1): the stream then carries stream-start/stop/commit/abort events, which
   * the streamer must handle. Off unless FERRY_STREAM_IN_PROGRESS=1 until the apply side handles them.
   */
  streamInProgress?: boolean;
  /** Walsender session settings (e.g. logical_decoding_work_mem), for tests that force streaming. */
  replicationSettings?: Record<string, string>;
}

/** The default of PgChangeSourceOptions.streamInProgress. */
function streamInProgressDefault(): boolean {
  return process.env.FERRY_STREAM_IN_PROGRESS === '1';
}

export class PgChangeSource implements ChangeSource {
  readonly capabilities = PG_CHANGE_SOURCE_CAPABILITIES;
  private readonly endpoint: PgEndpoint;
  private snapshotConn: pg.Client | undefined;
  private stream_: Awaited<ReturnType<typeof openReplicationStream>> | undefined;

  constructor(
    private readonly config: EndpointConfig,
    private readonly opts: PgChangeSourceOptions = {},
  ) {
    this.endpoint = pgEndpoint(config, 'source');
  }

  private async withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = await connect(this.endpoint);
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => {});
    }
  }

  preflight(flow: string, tables: TableSchema[]): Promise<void> {
    return this.withClient((c) => checkReplicationSource(c, flow, tables));
  }

  async prepare(flow: string, tables: TableSchema[], opts: { resuming: boolean }): Promise<StartPoint> {
    await this.withClient((c) => ensurePublication(c, flow, tables, { warn: this.opts.warn, publishLeaves: true }));
    const existing = await this.withClient((c) => findSlot(c, flow));
    if (existing) return { position: existing.confirmed, snapshot: null };
    if (opts.resuming) {
      throw new FerryError(
        `the replication slot ${slotName(flow)} of flow ${flow} is gone (dropped by \`ferry cleanup\` or by hand); the changes made since cannot be recovered from it`,
        'start the flow over: `ferry reset <config> --yes` (drops the publication, the `_ferry` rows and the local state), then `ferry run` with `target.onExistingRows: truncate`',
      );
    }
    const conn = await connect(this.endpoint, { replication: 'database' } as pg.ClientConfig);
    try {
      const { position, snapshot } = await createSlotWithSnapshot(conn, flow);
      this.snapshotConn = conn;
      return { position, snapshot };
    } catch (err) {
      await conn.end().catch(() => {});
      throw err;
    }
  }

  async releaseSnapshot(): Promise<void> {
    const conn = this.snapshotConn;
    this.snapshotConn = undefined;
    await conn?.end().catch(() => {});
  }

  async stream(
    flow: string,
    _tables: TableSchema[],
    from: Position,
    onEvents: (events: StreamEvent[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const stream = await openReplicationStream(this.endpoint, flow, normalizeLsn(from as string), onEvents, {
      streamInProgress: this.opts.streamInProgress ?? streamInProgressDefault(),
      sessionSettings: this.opts.replicationSettings,
    }).catch((err: unknown) => {
      throw this.streamError(flow, err);
    });
    this.stream_ = stream;
    const heartbeat = this.startHeartbeats();
    const onAbort = () => void stream.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      await stream.done.catch((err: unknown) => {
        throw this.streamError(flow, err);
      });
    } finally {
      signal.removeEventListener('abort', onAbort);
      heartbeat.stop();
      this.stream_ = undefined;
    }
  }

  /** A replication error that names the endpoint (and, for a dropped slot, what it means). */
  private streamError(flow: string, err: unknown): unknown {
    if (err instanceof FerryError) return err;
    const e = err as { code?: string; message?: string };
    if (e.code === '42704') {
      return Object.assign(
        new FerryError(
          `the replication slot ${slotName(flow)} of flow ${flow} on ${this.endpoint.display} is gone (dropped by \`ferry cleanup\` or by hand); the changes made since cannot be recovered from it`,
          'start the flow over (`ferry reset`, or an empty target and a new flow name)',
        ),
        { cause: err },
      );
    }
    const wrapped = new ConnectionError(`lost the replication stream from ${this.endpoint.display}: ${e.message ?? String(err)}`);
    Object.defineProperty(wrapped, 'cause', { value: err, enumerable: false });
    return wrapped;
  }

  /**
   * Non-transactional logical messages travel through the slot in WAL order: safe to acknowledge when idle. A lost
   * heartbeat connection is reported and opened again at the next beat (an idle slot must keep advancing).
   */
  private startHeartbeats(): { stop(): void } {
    let client: pg.Client | undefined;
    let failing = false;
    let busy = false;
    let stopped = false;
    const beat = async () => {
      if (busy || stopped) return;
      busy = true;
      try {
        client ??= await connect(this.endpoint);
        await client.query(`SELECT pg_logical_emit_message(false, $1, $2)`, [HEARTBEAT_PREFIX, String(Date.now())]);
        if (failing) this.opts.warn?.(`heartbeats on ${this.endpoint.display} work again`);
        failing = false;
      } catch (err) {
        if (!failing) this.opts.warn?.(`heartbeat on ${this.endpoint.display} failed (retrying; an idle slot does not advance meanwhile): ${(err as Error).message}`);
        failing = true;
        const c = client;
        client = undefined;
        await c?.end().catch(() => {});
      } finally {
        busy = false;
        if (stopped) await client?.end().catch(() => {});
      }
    };
    const timer = setInterval(() => void beat(), this.opts.heartbeatMs ?? 5000);
    timer.unref();
    void beat();
    return {
      stop() {
        stopped = true;
        clearInterval(timer);
        if (!busy) void client?.end().catch(() => {});
      },
    };
  }

  /** Schema, partition and new-table hooks (stream-hooks.ts), with their catalog poller running until `signal`. */
  async streamHooks(
    flow: string,
    tables: TableSchema[],
    selection: Selection,
    opts: { warn: (message: string) => void; onTables?: (tables: TableSchema[]) => void; signal: AbortSignal },
  ): Promise<{ hooks: StreamHooks; close(): Promise<void> }> {
    const parts = new PgStreamParts({ flow, source: this.config, selection, tables, warn: opts.warn, onTables: opts.onTables });
    await parts.start();
    parts.run(opts.signal);
    return { hooks: parts.hooks, close: () => parts.close() };
  }

  async acknowledge(position: Position): Promise<void> {
    this.stream_?.acknowledge(normalizeLsn(position as string));
  }

  async fetchRows(table: TableSchema, keys: RowImage[]): Promise<RowImage[]> {
    if (keys.length === 0) return [];
    const pk = table.primaryKey;
    const tuple = (k: RowImage) => `(${pk.map((c) => (k[c] == null ? 'NULL' : literal(k[c]!))).join(', ')})`;
    const cols = copiedColumns(table);
    return this.withClient(async (c) => {
      const out: RowImage[] = [];
      for (let i = 0; i < keys.length; i += 1000) {
        const slice = keys.slice(i, i + 1000);
        const { rows } = await c.query<RowImage>(
          `SELECT ${columnList(cols)} FROM ${qualified(table.source)}
           WHERE (${pk.map(ident).join(', ')}) IN (${slice.map(tuple).join(', ')})`,
        );
        out.push(...rows);
      }
      return out;
    });
  }

  currentPosition(): Promise<Position> {
    return this.withClient(async (c) => normalizeLsn((await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l));
  }

  compare(a: Position, b: Position): number {
    return compareLsn(a as string, b as string);
  }

  lag(flow: string): Promise<LagInfo | undefined> {
    return this.withClient((c) => slotLag(c, flow));
  }

  cleanup(flow: string): Promise<void> {
    return this.withClient((c) => dropSlotAndPublication(c, flow));
  }

  async close(): Promise<void> {
    await this.releaseSnapshot();
    await this.stream_?.stop();
  }
}
