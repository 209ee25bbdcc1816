/**
 * Reading a slot with pg-logical-replication's pgoutput plugin, turned into Ferry's StreamEvents.
 *
 * Two pitfalls of the library are designed around:
 * - It parses values with pg-types (int8 to string, timestamptz to Date, jsonb to object), which breaks fidelity.
 *   Every relation column's parser is replaced with the identity, so values stay the text pgoutput sent.
 * - It acknowledges on its own timer, possibly ahead of what the target committed. Auto-acknowledge is off; only
 *   `acknowledge()` (called after the target committed) moves the slot.
 * - Its flow control awaits a handler per message, which costs more than the decoding. Instead, the messages that
 *   one socket read yields (they are parsed synchronously, in one tick) are collected into a batch; the socket is
 *   paused until the batch's handler has returned (backpressure), then resumed.
 */
import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type { Change, RowImage, StreamEvent } from '../../../core/ports/change-source.js';
import { HEARTBEAT_PREFIX, publicationName, slotName } from './names.js';
import { normalizeLsn } from './lsn.js';

type PgoutputMessage = Parameters<PgoutputPlugin['parse']> extends never ? never : ReturnType<PgoutputPlugin['parse']>;

interface Relation {
  schema: string;
  name: string;
  columns: { name: string; parser: (raw: unknown) => unknown }[];
}

const identity = (raw: unknown) => raw;

/** pgoutput's commit timestamps are microseconds since the Unix epoch (the library already shifted them). */
function micros(t: unknown): number {
  return Number(BigInt(t as bigint) / 1000n);
}

/** Drop `undefined` (an unchanged TOAST value with no old row to copy it from): the column is simply absent. */
function image(tuple: Record<string, unknown> | null): RowImage | null {
  if (!tuple) return null;
  // Values are already strings or null (identity parsers); copy only when a column must be dropped.
  for (const k in tuple) {
    if (tuple[k] === undefined) {
      const out: RowImage = {};
      for (const j in tuple) if (tuple[j] !== undefined) out[j] = tuple[j] as string | null;
      return out;
    }
  }
  return tuple as RowImage;
}

export interface ReplicationStream {
  acknowledge(lsn: string): Promise<void>;
  /** Resolves when the stream has ended (after stop, or on an error, which it rethrows). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function openReplicationStream(
  config: pg.ClientConfig,
  flow: string,
  selected: ReadonlySet<string>,
  from: string,
  onEvents: (events: StreamEvent[]) => Promise<void>,
): Promise<ReplicationStream> {
  const service = new LogicalReplicationService(config, {
    acknowledge: { auto: false, timeoutSeconds: 0 },
    flowControl: { enabled: false },
  });
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publicationName(flow)], messages: true });
  const parser = (plugin as unknown as { parser: { readRelationColumn: (r: unknown) => { parser: unknown } } }).parser;
  const readColumn = parser.readRelationColumn.bind(parser);
  parser.readRelationColumn = (reader: unknown) => ({ ...readColumn(reader), parser: identity });

  let failure: unknown;
  const started = new Promise<void>((resolve, reject) => {
    service.once('start', () => resolve());
    service.once('error', reject);
  });
  service.on('error', (err: unknown) => {
    failure ??= err;
  });
  const socket = () => (service as unknown as { _connection?: { stream?: { pause(): void; resume(): void } } })._connection?.stream;
  let batch: StreamEvent[] = [];
  let delivering = Promise.resolve();
  const deliver = () => {
    const events = batch;
    batch = [];
    delivering = delivering
      .then(() => onEvents(events))
      .catch((err: unknown) => {
        failure ??= err;
        void service.stop();
      })
      .finally(() => {
        if (batch.length === 0) socket()?.resume();
      });
  };
  service.on('data', (lsn: string, msg: PgoutputMessage) => {
    const event = toEvent(lsn, msg as unknown as Record<string, unknown>, selected);
    if (!event) return;
    if (batch.length === 0) {
      socket()?.pause();
      setImmediate(deliver);
    }
    batch.push(event);
  });
  // A keepalive is parsed as soon as it arrives, ahead of data messages still queued by flow control, so its LSN
  // must never be acknowledged as if everything before it were applied. It is answered with the last position the
  // target confirmed. (Idle slots advance through heartbeat messages instead, which travel in order with the data.)
  let acked: string | undefined;
  service.on('heartbeat', (_lsn: string, _time: number, shouldRespond: boolean) => {
    if (shouldRespond && acked) void service.acknowledge(acked);
  });
  const subscription = service.subscribe(plugin, slotName(flow), from);
  const done = subscription.then(
    () => {
      if (failure) throw failure;
    },
    (err) => {
      throw failure ?? err;
    },
  );
  await Promise.race([started, done]);
  // Status updates keep the walsender from timing out (wal_sender_timeout) while a long transaction is applied
  // and nothing new is acknowledged. Repeating the last confirmed position is always safe.
  const keepAlive = setInterval(() => void service.acknowledge(acked ?? from).catch(() => {}), 10_000);
  keepAlive.unref();
  void done.finally(() => clearInterval(keepAlive)).catch(() => {});
  return {
    async acknowledge(lsn: string) {
      acked = lsn;
      await service.acknowledge(lsn);
    },
    done,
    async stop() {
      await service.stop();
      await done.catch(() => {});
    },
  };
}

function tableOf(r: unknown): string {
  const rel = r as Relation;
  return `${rel.schema}.${rel.name}`;
}

function toEvent(lsn: string, msg: Record<string, unknown>, selected: ReadonlySet<string>): StreamEvent | undefined {
  switch (msg.tag) {
    case 'begin':
      return { kind: 'begin', position: normalizeLsn(msg.commitLsn as string), time: micros(msg.commitTime) };
    case 'commit':
      return { kind: 'commit', position: normalizeLsn(msg.commitEndLsn as string), time: micros(msg.commitTime) };
    case 'relation': {
      // Every Relation message reaches the core (stream hooks follow schema changes and map partitions).
      const r = msg as unknown as { relationOid: number; columns: { name: string; flags: number; typeOid: number; typeMod: number }[]; replicaIdentity: string };
      return {
        kind: 'relation',
        relation: {
          id: String(r.relationOid),
          table: tableOf(msg),
          columns: r.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, typeMod: c.typeMod, key: (c.flags & 1) === 1 })),
          replicaIdentity: r.replicaIdentity.slice(0, 1),
        },
      };
    }
    case 'message': {
      if (msg.prefix !== HEARTBEAT_PREFIX) {
        return {
          kind: 'message',
          prefix: msg.prefix as string,
          content: Buffer.from(msg.content as Uint8Array).toString('utf8'),
          position: normalizeLsn(lsn),
          transactional: Boolean(msg.transactional),
        };
      }
      const sent = Number(Buffer.from(msg.content as Uint8Array).toString('utf8'));
      return { kind: 'heartbeat', position: normalizeLsn(lsn), time: Number.isFinite(sent) ? sent : Date.now() };
    }
    case 'insert':
    case 'update':
    case 'delete': {
      const table = tableOf(msg.relation);
      // Leaf partitions and tables added while streaming are not in `selected`: the streamer drops unknown tables.
      void selected;
      return { kind: 'change', change: toChange(table, msg) };
    }
    case 'truncate': {
      const tables = (msg.relations as unknown[]).map(tableOf);
      if (tables.length === 0) return undefined;
      const change: Change = { op: 'truncate', tables, cascade: Boolean(msg.cascade), restartIdentity: Boolean(msg.restartIdentity) };
      return { kind: 'change', change };
    }
    default:
      return undefined; // type, origin: the parser keeps what it needs
  }
}

function toChange(table: string, msg: Record<string, unknown>): Change {
  const row = image(msg.new as Record<string, unknown> | null);
  const old = image((msg.old ?? msg.key) as Record<string, unknown> | null);
  if (msg.tag === 'insert') return { op: 'insert', table, row: row! };
  if (msg.tag === 'update') return { op: 'update', table, row: row!, old };
  return { op: 'delete', table, old: old! };
}
