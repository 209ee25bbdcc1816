/**
 * Reading a slot over a `replication: 'database'` connection: START_REPLICATION ... LOGICAL with pgoutput (with
 * logical messages), decoded by our own decoder (pgoutput-decode.ts) straight into StreamEvents.
 *
 * - Protocol: version 1 by default. With `streamInProgress` and a server of PostgreSQL 14+, version 2 with
 *   `streaming 'on'`: a transaction larger than the server's logical_decoding_work_mem arrives in blocks before
 *   it commits (stream-start/stop/commit/abort events, changes with their xid) instead of being spilled to disk
 *   on the source and sent only at commit. Older servers (and the option off) get exactly the v1 stream.
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
import { connect, type PgEndpoint } from '../connect.js';
import { publicationName, slotName } from './names.js';
import { normalizeLsn } from './lsn.js';
import { decodeReplicationMessage, PgoutputDecoder, standbyStatusUpdate, XLOG_BODY_OFFSET } from './pgoutput-decode.js';

export interface ReplicationStreamOptions {
  /** Ask for protocol 2 with streaming of in-progress transactions when the server is PostgreSQL 14+. */
  streamInProgress?: boolean;
  /**
   * Extra settings of the walsender session (`-c name=value` startup options), e.g. a small
   * logical_decoding_work_mem so that tests see streamed blocks with small transactions.
   */
  sessionSettings?: Record<string, string>;
}

export interface ReplicationStream {
  /** The pgoutput protocol version in use: 2 only when in-progress transactions are streamed. */
  protoVersion: 1 | 2;
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
  opts: ReplicationStreamOptions = {},
): Promise<ReplicationStream> {
  const extra = Object.entries(opts.sessionSettings ?? {}).map(([k, v]) => ` -c ${k}=${v}`).join('');
  const client = await connect(endpoint, {
    replication: 'database',
    statement_timeout: 0,
    query_timeout: 0,
    ...(extra ? { options: `${endpoint.config.options ?? ''}${extra}` } : {}),
  } as pg.ClientConfig);
  let protoVersion: 1 | 2 = 1;
  if (opts.streamInProgress) {
    try {
      // SHOW is a replication command: this asks the walsender itself.
      const { rows } = await client.query<{ server_version_num: string }>('SHOW server_version_num');
      if (Number(rows[0]?.server_version_num) >= 140_000) protoVersion = 2;
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
  }
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
      if (chunk[0] === 0x77) {
        // XLogData: decode the body in place (its header's LSNs are not used)
        const event = decoder.decode(chunk, XLOG_BODY_OFFSET);
        if (event) push(event);
        return;
      }
      const m = decodeReplicationMessage(chunk);
      if (m.type === 'keepalive') {
        if (m.replyRequested) send(acked);
        push({ kind: 'keepalive', position: m.end, time: m.time });
      }
    } catch (err) {
      failure ??= err;
      void stop();
    }
  });

  const started = new Promise<void>((resolve) => connection.once('replicationStart', resolve));
  const sql =
    `START_REPLICATION SLOT "${slotName(flow)}" LOGICAL ${normalizeLsn(from)} ` +
    `(proto_version '${protoVersion}', publication_names '${publicationName(flow)}', messages 'true'${protoVersion === 2 ? `, streaming 'on'` : ''})`;
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
    protoVersion,
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
