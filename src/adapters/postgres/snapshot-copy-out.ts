/**
 * A lean `COPY … TO STDOUT` reader for the snapshot: the CopyData payloads as a byte stream, in socket-sized pieces.
 *
 * Why not pg-copy-streams' copy-to: the server sends one CopyData message per row, and that reader takes a view of
 * every row and a view of every header through its buffer list, then copies them together again: per row several
 * small allocations and calls, which made Ferry's process cost about three times the CPU of a `psql | psql` pipe
 * per row. This one compacts each socket read in place (`copyWithin` moves a row's payload over the 5-byte header
 * before it: a memmove, no allocation) and pushes one view per socket read, so the per-row work is reading a header.
 *
 * Protocol (see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-COPY): after the query, the
 * server sends CopyOutResponse, CopyData messages (NoticeResponse, ParameterStatus and NotificationResponse may come
 * in between), then CopyDone, CommandComplete and ReadyForQuery, or an ErrorResponse at any point. Like pg-copy-streams,
 * the reader takes the connection's socket from the driver for the COPY and gives it back, with every byte it did
 * not consume, at CopyDone or ErrorResponse; the driver then handles CommandComplete, ReadyForQuery or the error as
 * for any query, calling the handle* methods below. Backpressure: the socket is read only while the consumer wants
 * more, so a slow target slows the source's COPY through TCP, never memory.
 */
import type { Socket } from 'node:net';
import type pg from 'pg';
import { Readable } from 'node:stream';

const COPY_DATA = 0x64; // d
const COPY_DONE = 0x63; // c
const ERROR_RESPONSE = 0x45; // E

interface PgConnection {
  stream: Socket;
  query(text: string): void;
}

type DataHandler = (chunk: Buffer) => void;

/** A pg Submittable (`client.query(copyOut(sql))`): a Readable of the COPY's payload bytes. */
export class CopyOutStream extends Readable {
  /** Rows the server reported in CommandComplete (set once the COPY has finished). */
  rowCount = 0;
  private connection: PgConnection | undefined;
  private pgHandler: DataHandler | undefined;
  private readonly onReadable = () => this.pump();
  private wanted = false;
  private pumping = false;
  private attached = false;
  /** Bytes of the current message still to come: payload of a CopyData, or anything else to skip. */
  private left = 0;
  private inCopyData = false;
  /** A message header split across two socket reads (at most 4 bytes of it so far). */
  private partial: Buffer | undefined;

  constructor(readonly text: string) {
    super({ highWaterMark: 256 * 1024 });
  }

  submit(driverConnection: pg.Connection): void {
    // The driver's Connection: its socket and its simple-query send (typed loosely by @types/pg).
    const connection = driverConnection as unknown as PgConnection;
    this.connection = connection;
    const s = connection.stream;
    const handlers = s.listeners('data') as DataHandler[];
    if (handlers.length !== 1) throw new Error(`expected the driver's one data listener on the socket, found ${handlers.length}`);
    this.pgHandler = handlers[0];
    s.removeListener('data', this.pgHandler!);
    s.pause();
    this.attached = true;
    s.on('readable', this.onReadable);
    connection.query(this.text);
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  /** Read the socket while the consumer wants more; each read is parsed and pushed at once. */
  private pump(): void {
    if (this.pumping || !this.wanted || !this.attached) return;
    this.pumping = true;
    try {
      let chunk: Buffer | null;
      while (this.wanted && this.attached && (chunk = this.connection!.stream.read() as Buffer | null) !== null) this.parse(chunk);
    } finally {
      this.pumping = false;
    }
  }

  private parse(input: Buffer): void {
    let buf = input;
    if (this.partial) {
      // Rare (a header split by a read): join the few bytes kept with this read.
      buf = Buffer.concat([this.partial, input]);
      this.partial = undefined;
    }
    const end = buf.length;
    let pos = 0;
    // Payload bytes are moved down to `out`, over the headers before them: buf[0, out) is this read's payload.
    let out = 0;
    while (pos < end) {
      if (this.left > 0) {
        const n = Math.min(this.left, end - pos);
        if (this.inCopyData) {
          if (out !== pos) buf.copyWithin(out, pos, pos + n);
          out += n;
        }
        pos += n;
        this.left -= n;
        continue;
      }
      if (end - pos < 5) {
        // Keep a copy: `buf` is handed on as the payload view and must not be written again.
        this.partial = Buffer.from(buf.subarray(pos, end));
        break;
      }
      const code = buf[pos]!;
      const length = ((buf[pos + 1]! << 24) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 8) | buf[pos + 4]!) - 4;
      if (code === COPY_DATA) {
        this.inCopyData = true;
        this.left = length;
        pos += 5;
        continue;
      }
      if (code === COPY_DONE || code === ERROR_RESPONSE) {
        // CopyDone: this reader's part is over; skip it and give the rest (CommandComplete, ReadyForQuery) to the
        // driver. ErrorResponse: the driver parses it and calls handleError.
        const rest = buf.subarray(code === COPY_DONE ? pos + 5 + length : pos, end);
        if (out > 0) this.wanted = this.push(buf.subarray(0, out));
        this.detach(rest);
        if (code === COPY_DONE) this.push(null);
        return;
      }
      // CopyOutResponse, NoticeResponse, ParameterStatus, NotificationResponse: skipped.
      this.inCopyData = false;
      this.left = length;
      pos += 5;
    }
    if (out > 0) this.wanted = this.push(buf.subarray(0, out));
  }

  /** Give the socket back to the driver, with the bytes not consumed. */
  private detach(rest: Buffer): void {
    if (!this.attached) return;
    this.attached = false;
    const s = this.connection!.stream;
    s.removeListener('readable', this.onReadable);
    s.on('data', this.pgHandler!);
    if (rest.length > 0) this.pgHandler!(rest);
    // As pg-copy-streams does: resume on the next tick, after the driver's handler may have paused the socket.
    process.nextTick(() => s.resume());
  }

  handleError(err: Error): void {
    // An error the driver parsed (ErrorResponse) or the connection ending: the COPY failed.
    if (this.attached) this.detach(Buffer.alloc(0));
    this.destroy(err);
  }

  handleCommandComplete(msg: { text?: string } | undefined): void {
    const match = /COPY (\d+)/.exec(msg?.text ?? '');
    if (match) this.rowCount = Number(match[1]);
  }

  handleReadyForQuery(): void {}
}

export function copyOut(text: string): CopyOutStream {
  return new CopyOutStream(text);
}
