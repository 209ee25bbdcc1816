/**
 * Reading a slot over a `replication: 'database'` connection: START_REPLICATION ... LOGICAL with pgoutput
 * (protocol version 1, with logical messages), decoded by our own decoder (pgoutput-decode.ts) into StreamEvents.
 *
 * - node-postgres runs START_REPLICATION as a query whose CopyBoth data arrives as the connection's `copyData`
 *   events; we write Standby Status Updates back as CopyData. The query settles when the stream ends.
 * - Acknowledgements are exact: the position the streamer confirms (a commit's end, a heartbeat's or keepalive's
 *   position) is sent as written, flushed and applied, never `+ 1`.
 * - Keepalives become events in stream order with the data (never ahead of data still waiting to be applied), so
 *   the streamer can confirm their position once everything before it is committed; a keepalive that asks for a
 *   reply is answered at once with the last confirmed position (always safe).
 * - Backpressure: the messages that one socket read yields (parsed synchronously, in one tick) are collected into
 *   a batch; the socket is paused until the batch's handler has returned, then resumed.
 */
import pg from 'pg';
import type { StreamEvent } from '../../../core/ports/change-source.js';
import type { Change } from '../../../core/ports/change-source.js';
import { connect, type PgEndpoint } from '../connect.js';
import { HEARTBEAT_PREFIX, publicationName, slotName } from './names.js';
import { normalizeLsn } from './lsn.js';
import { decodeReplicationMessage, PgoutputDecoder, standbyStatusUpdate, type PgoutputMessage } from './pgoutput-decode.js';

export interface ReplicationStream {
  /** Confirm `lsn` (exactly) to the source. */
  acknowledge(lsn: string): void;
  /** Resolves when the stream has ended (after stop, or on an error, which it rethrows). */
  done: Promise<void>;
  stop(): Promise<void>;
}

interface Connection {
  on(event: 'copyData', fn: (msg: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', fn: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream?: { pause(): void; resume(): void };
}

/**
 * How often the last confirmed position is repeated (so wal_sender_timeout never ends a slow apply), asking the
 * server to answer: a source that stays silent longer than SILENCE_MS while we read is taken as lost (a server
 * that hangs, a network that drops packets without resetting the connection), and the supervisor reconnects.
 */
const STATUS_INTERVAL_MS = 10_000;
const SILENCE_MS = Number(process.env.FERRY_STREAM_SILENCE_MS) || 60_000;

export async function openReplicationStream(
  endpoint: PgEndpoint,
  flow: string,
  from: string,
  onEvents: (events: StreamEvent[]) => Promise<void>,
): Promise<ReplicationStream> {
  const client = await connect(endpoint, { replication: 'database', statement_timeout: 0, query_timeout: 0 } as pg.ClientConfig);
  const connection = (client as unknown as { connection: Connection }).connection;
  const decoder = new PgoutputDecoder();
  let failure: unknown;
  let stopping = false;
  let acked = from;
  const send = (lsn: string, reply = false) => {
    if (stopping) return;
    try {
      connection.sendCopyFromChunk(standbyStatusUpdate(lsn, reply));
    } catch {
      // a closed socket: the stream's end reports it
    }
  };

  let batch: StreamEvent[] = [];
  let delivering = Promise.resolve();
  let paused = false;
  let heard = Date.now();
  const deliver = () => {
    const events = batch;
    batch = [];
    delivering = delivering
      .then(() => onEvents(events))
      .catch((err: unknown) => {
        failure ??= err;
        void stop();
      })
      .finally(() => {
        if (batch.length === 0) {
          paused = false;
          heard = Date.now();
          connection.stream?.resume();
        }
      });
  };
  const push = (event: StreamEvent) => {
    if (batch.length === 0) {
      paused = true;
      connection.stream?.pause();
      setImmediate(deliver);
    }
    batch.push(event);
  };

  connection.on('copyData', ({ chunk }) => {
    if (failure !== undefined) return;
    heard = Date.now();
    try {
      const m = decodeReplicationMessage(chunk);
      if (m.type === 'keepalive') {
        if (m.replyRequested) send(acked);
        push({ kind: 'keepalive', position: normalizeLsn(m.end), time: m.time });
      } else if (m.type === 'xlog') {
        const event = toEvent(decoder.decode(m.body));
        if (event) push(event);
      }
    } catch (err) {
      failure ??= err;
      void stop();
    }
  });

  const started = new Promise<void>((resolve) => connection.once('replicationStart', resolve));
  const sql =
    `START_REPLICATION SLOT "${slotName(flow)}" LOGICAL ${normalizeLsn(from)} ` +
    `(proto_version '1', publication_names '${publicationName(flow)}', messages 'true')`;
  const query = client.query(sql);
  const done = query.then(
    async () => {
      await delivering;
      if (failure !== undefined) throw failure;
      if (!stopping) throw new Error(`the replication stream of ${endpoint.display} ended`);
    },
    async (err: unknown) => {
      await delivering;
      if (failure !== undefined) throw failure;
      if (!stopping) throw err;
    },
  );
  const status = setInterval(() => {
    if (!paused && Date.now() - heard > SILENCE_MS) {
      failure ??= new Error(`the replication connection to ${endpoint.display} was silent for ${Math.round((Date.now() - heard) / 1000)} s`);
      void stop();
      return;
    }
    send(acked, true);
  }, Math.min(STATUS_INTERVAL_MS, SILENCE_MS / 3));
  status.unref();

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      send(acked);
      stopping = true;
      clearInterval(status);
      await client.end().catch(() => {});
    })());
  void done.catch(() => {}).finally(() => void stop());

  await Promise.race([started, done]);
  return {
    acknowledge(lsn: string) {
      acked = lsn;
      send(lsn);
    },
    done,
    async stop() {
      await stop();
      await done.catch(() => {});
    },
  };
}

function toEvent(msg: PgoutputMessage): StreamEvent | undefined {
  switch (msg.tag) {
    case 'begin':
      return { kind: 'begin', position: normalizeLsn(msg.finalLsn), time: msg.time };
    case 'commit':
      return { kind: 'commit', position: normalizeLsn(msg.endLsn), time: msg.time };
    case 'relation': {
      const r = msg.relation;
      return {
        kind: 'relation',
        relation: { id: String(r.oid), table: `${r.schema}.${r.name}`, columns: r.columns, replicaIdentity: r.replicaIdentity },
      };
    }
    case 'message': {
      const position = normalizeLsn(msg.lsn);
      if (msg.prefix === HEARTBEAT_PREFIX && !msg.transactional) {
        const sent = Number(msg.content);
        return { kind: 'heartbeat', position, time: Number.isFinite(sent) ? sent : Date.now() };
      }
      return { kind: 'message', prefix: msg.prefix, content: msg.content, position, transactional: msg.transactional };
    }
    case 'insert':
      return { kind: 'change', change: { op: 'insert', table: tableOf(msg.relation), row: msg.row } };
    case 'update':
      return { kind: 'change', change: { op: 'update', table: tableOf(msg.relation), row: msg.row, old: msg.old } };
    case 'delete':
      return { kind: 'change', change: { op: 'delete', table: tableOf(msg.relation), old: msg.old } };
    case 'truncate': {
      const change: Change = { op: 'truncate', tables: msg.relations.map(tableOf), cascade: msg.cascade, restartIdentity: msg.restartIdentity };
      return { kind: 'change', change };
    }
    default:
      return undefined;
  }
}

function tableOf(r: { schema: string; name: string }): string {
  return `${r.schema}.${r.name}`;
}
