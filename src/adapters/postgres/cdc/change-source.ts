/** ChangeSource for PostgreSQL: a publication and a pgoutput slot per flow, read with pg-logical-replication. */
import pg from 'pg';
import type { EndpointConfig } from '../../../config/schema.js';
import { tableKey, type Position, type TableSchema } from '../../../core/model.js';
import type { ChangeSource, LagInfo, RowImage, StartPoint, StreamEvent } from '../../../core/ports/change-source.js';
import { connect, pgEndpoint, type PgEndpoint } from '../connect.js';
import { copiedColumns } from '../copy-format.js';
import { columnList, ident, literal, qualified } from '../sql.js';
import { compareLsn, normalizeLsn } from './lsn.js';
import { HEARTBEAT_PREFIX, slotName } from './names.js';
import { FerryError } from '../../../core/errors.js';
import { openReplicationStream } from './pgoutput-stream.js';
import { PgStreamParts } from './stream-hooks.js';
import type { StreamHooks } from '../../../core/cdc/evolve-contract.js';
import type { Selection } from '../../../core/ports/source.js';
import { checkReplicationSource } from './replication-preflight.js';
import { createSlotWithSnapshot, dropSlotAndPublication, ensurePublication, findSlot, slotLag } from './slot.js';

export interface PgChangeSourceOptions {
  /** How often a heartbeat message is written to the WAL, so an idle slot advances and lag is measured. */
  heartbeatMs?: number;
  warn?: (message: string) => void;
}

export class PgChangeSource implements ChangeSource {
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
        'start the flow over: empty the target (or set target.onExistingRows: truncate) and use a new state file or flow name',
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
    tables: TableSchema[],
    from: Position,
    onEvents: (events: StreamEvent[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const selected = new Set(tables.map((t) => tableKey(t.source)));
    const stream = await openReplicationStream(
      { ...this.endpoint.config },
      flow,
      selected,
      normalizeLsn(from as string),
      onEvents,
    );
    this.stream_ = stream;
    const heartbeat = this.startHeartbeats();
    const onAbort = () => void stream.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      await stream.done;
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(heartbeat.timer);
      await heartbeat.client.then((c) => c?.end()).catch(() => {});
      this.stream_ = undefined;
    }
  }

  /** Non-transactional logical messages travel through the slot in WAL order: safe to acknowledge when idle. */
  private startHeartbeats(): { timer: NodeJS.Timeout; client: Promise<pg.Client | undefined> } {
    const client = connect(this.endpoint).catch(() => undefined);
    let warned = false;
    const beat = async () => {
      const c = await client;
      if (!c) return;
      try {
        await c.query(`SELECT pg_logical_emit_message(false, $1, $2)`, [HEARTBEAT_PREFIX, String(Date.now())]);
      } catch (err) {
        if (!warned) this.opts.warn?.(`heartbeats disabled (an idle slot will not advance): ${(err as Error).message}`);
        warned = true;
      }
    };
    const timer = setInterval(() => void beat(), this.opts.heartbeatMs ?? 5000);
    timer.unref();
    void beat();
    return { timer, client };
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
    await this.stream_?.acknowledge(position as string);
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
