/**
 * Decoding the streaming replication protocol (CopyBoth messages) and pgoutput protocol versions 1 and 2 straight
 * into StreamEvents, as documented in "Streaming Replication Protocol" and "Logical Replication Message Formats" of
 * the PostgreSQL manual.
 *
 * Values stay the text pgoutput sent ('t'), null for 'n'; an unchanged TOAST value ('u') leaves the column out of
 * the row image (it must be left as it is). Relations are keyed by OID, as the protocol keys them: a Relation
 * message replaces what was known for that OID (a renamed table or column arrives as a new Relation message).
 *
 * Protocol 2 (`streaming 'on'`, PostgreSQL 14+) adds blocks of in-progress transactions: Stream Start ('S') and
 * Stream Stop ('E') bracket a block, and inside it Relation, Type, Insert, Update, Delete, Truncate and Message
 * carry the (sub)transaction's xid right after their tag. Stream Commit ('c') and Stream Abort ('A') come between
 * blocks. The decoder tracks whether a block is open to know whether that xid field is there.
 *
 * Hot path (one call per change): no intermediate message object, no Reader object, no per-change string building
 * (the `schema.name` key and column names are computed once per Relation message), values sliced straight out of
 * the socket's Buffer, LSN strings built only for messages that carry positions Ferry uses.
 */
import type { Change, RelationInfo, RowImage, StreamEvent } from '../../../core/ports/change-source.js';
import { HEARTBEAT_PREFIX } from './names.js';

/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_MS = 946_684_800_000;

/** What the decoder keeps per relation OID: the event payload, plus what row decoding needs, built once. */
export interface DecodedRelation {
  oid: number;
  /** `schema.name`: the source key every change of this relation carries (one string, shared by all its changes). */
  table: string;
  /** Column names in tuple order. */
  names: string[];
  /** Builds a row image with every column from values in tuple order (see rowConstructor); null if none could be made. */
  Row: (new (values: (string | null)[]) => RowImage) | null;
  info: RelationInfo;
}

/**
 * A constructor that sets every column of the relation in order. Rows built this way share one hidden class made
 * once per relation, with in-object fields: about 8x faster than adding keys one by one to `{}` (each a keyed
 * store through a transition), and smaller. Column names enter the generated code only as JSON string literals.
 * Its prototype is Object.prototype, so rows are plain objects like any other. Not for a column named
 * `__proto__` (an assignment would set the prototype): such relations use the generic path.
 */
function rowConstructor(names: string[]): DecodedRelation['Row'] {
  if (names.includes('__proto__')) return null;
  const body = names.map((n, i) => `this[${JSON.stringify(n)}] = v[${i}];`).join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const Row = new Function('v', body) as unknown as NonNullable<DecodedRelation['Row']>;
  Row.prototype = Object.prototype;
  return Row;
}

/** A CopyData message of the replication stream. */
export type ReplicationMessage =
  | { type: 'xlog'; start: string; end: string; body: Buffer }
  | { type: 'keepalive'; end: string; time: number; replyRequested: boolean }
  | { type: 'unknown'; code: number };

/** Canonical LSN text (upper-case hex, unpadded: what normalizeLsn returns), read from 8 bytes. */
function lsnAt(buf: Buffer, at: number): string {
  return `${buf.readUInt32BE(at).toString(16).toUpperCase()}/${buf.readUInt32BE(at + 4).toString(16).toUpperCase()}`;
}

/** A PostgreSQL timestamp (microseconds since 2000-01-01) as Unix milliseconds, without BigInt. */
function timeAt(buf: Buffer, at: number): number {
  // hi * 2^32 + lo micros; exact in a double within ±285 years (2^53 µs); truncated toward zero as BigInt division would.
  const micros = buf.readInt32BE(at) * 4_294_967_296 + buf.readUInt32BE(at + 4);
  return Math.trunc(micros / 1000) + PG_EPOCH_MS;
}

/** XLogData ('w'): the pgoutput message starts at this offset of the CopyData chunk. */
export const XLOG_BODY_OFFSET = 25;

export function decodeReplicationMessage(chunk: Buffer): ReplicationMessage {
  switch (chunk[0]) {
    case 0x77: // 'w' XLogData: start, end, send time, then the plugin's message
      return { type: 'xlog', start: lsnAt(chunk, 1), end: lsnAt(chunk, 9), body: chunk.subarray(XLOG_BODY_OFFSET) };
    case 0x6b: // 'k' primary keepalive: end of WAL sent, send time, reply requested
      return { type: 'keepalive', end: lsnAt(chunk, 1), time: timeAt(chunk, 9), replyRequested: chunk[17] === 1 };
    default:
      return { type: 'unknown', code: chunk[0] ?? -1 };
  }
}

/**
 * A Standby Status Update ('r'): written, flushed and applied are all `lsn`, exactly (PostgreSQL skips, after a
 * restart, every transaction whose commit record starts before the confirmed position, so `lsn + 1` could skip the
 * next one).
 */
export function standbyStatusUpdate(lsn: string, replyRequested = false, now = Date.now()): Buffer {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  const out = Buffer.alloc(34);
  out[0] = 0x72;
  for (const at of [1, 9, 17]) {
    out.writeUInt32BE(hi, at);
    out.writeUInt32BE(lo, at + 4);
  }
  out.writeBigInt64BE(BigInt(now - PG_EPOCH_MS) * 1000n, 25);
  out[33] = replyRequested ? 1 : 0;
  return out;
}

/** Buffer's own UTF-8 slice (what toString('utf8', s, e) ends in, without its argument checks), if present. */
type Sliceable = Buffer & { utf8Slice?: (start: number, end: number) => string };
const fastSlice = typeof (Buffer.prototype as Sliceable).utf8Slice === 'function';

/**
 * Decodes one session's pgoutput messages; remembers relations by OID (they are sent once per session, and again
 * when they change) and whether a streamed block is open.
 */
export class PgoutputDecoder {
  readonly relations = new Map<number, DecodedRelation>();
  /** Between Stream Start and Stream Stop: messages carry an xid after their tag. */
  private inBlock = false;
  private buf: Buffer = Buffer.alloc(0);
  private at = 0;
  /** A tuple's values, reused from row to row (only read while that row is built). */
  private readonly values: (string | null)[] = [];
  /** Which of those were 'u' (unchanged TOAST); cleared as the row is built. */
  private readonly unchanged: number[] = [];

  /**
   * The pgoutput message at `start` of `buf` (an XLogData chunk's body: pass the chunk and XLOG_BODY_OFFSET to
   * avoid a subarray) as a StreamEvent; undefined for what Ferry does not use (Type, Origin).
   */
  decode(buf: Buffer, start = 0): StreamEvent | undefined {
    this.buf = buf;
    this.at = start + 1;
    const tag = buf[start];
    switch (tag) {
      case 0x49: {
        // 'I': [xid], relation, 'N', new tuple
        const xid = this.xid();
        const rel = this.relation(this.u32());
        this.at++;
        return this.change({ op: 'insert', table: rel.table, row: this.tuple(rel) }, xid);
      }
      case 0x55: {
        // 'U': [xid], relation, optional 'K' (old key) or 'O' (old row), 'N' new tuple
        const xid = this.xid();
        const rel = this.relation(this.u32());
        let old: RowImage | null = null;
        const kind = buf[this.at++];
        if (kind === 0x4b || kind === 0x4f) {
          old = this.tuple(rel);
          this.at++;
        }
        return this.change({ op: 'update', table: rel.table, row: this.tuple(rel), old }, xid);
      }
      case 0x44: {
        // 'D': [xid], relation, 'K' or 'O', old tuple
        const xid = this.xid();
        const rel = this.relation(this.u32());
        this.at++;
        return this.change({ op: 'delete', table: rel.table, old: this.tuple(rel) }, xid);
      }
      case 0x42: // 'B': final LSN (the commit record's start), commit time, xid
        return { kind: 'begin', position: lsnAt(buf, this.at), time: timeAt(buf, this.at + 8) };
      case 0x43: // 'C': flags, commit LSN, end LSN (the position Ferry confirms), commit time
        return { kind: 'commit', position: lsnAt(buf, this.at + 9), time: timeAt(buf, this.at + 17) };
      case 0x52: {
        // 'R': [xid], oid, schema, name, replica identity, columns
        this.xid();
        const oid = this.u32();
        const schema = this.cstring();
        const name = this.cstring();
        const replicaIdentity = String.fromCharCode(buf[this.at++]!);
        const n = this.i16();
        const columns: RelationInfo['columns'] = [];
        for (let i = 0; i < n; i++) {
          const flags = buf[this.at++]!;
          const colName = this.cstring();
          const typeOid = this.u32();
          const typeMod = buf.readInt32BE(this.at);
          this.at += 4;
          columns.push({ name: colName, typeOid, typeMod, key: (flags & 1) === 1 });
        }
        const table = `${schema}.${name}`;
        const info: RelationInfo = { id: String(oid), table, columns, replicaIdentity };
        const names = columns.map((c) => c.name);
        this.relations.set(oid, { oid, table, names, Row: rowConstructor(names), info });
        return { kind: 'relation', relation: info };
      }
      case 0x54: {
        // 'T': [xid], number of relations, options, OIDs
        const xid = this.xid();
        const n = buf.readInt32BE(this.at);
        const options = buf[this.at + 4]!;
        this.at += 5;
        const tables: string[] = [];
        for (let i = 0; i < n; i++) tables.push(this.relation(this.u32()).table);
        return this.change({ op: 'truncate', tables, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 }, xid);
      }
      case 0x4d: {
        // 'M': [xid], flags, LSN, prefix, length, content
        const xid = this.xid();
        const transactional = (buf[this.at++]! & 1) === 1;
        const position = lsnAt(buf, this.at);
        this.at += 8;
        const prefix = this.cstring();
        const len = buf.readInt32BE(this.at);
        this.at += 4;
        const content = this.text(len);
        if (prefix === HEARTBEAT_PREFIX && !transactional) {
          const sent = Number(content);
          return { kind: 'heartbeat', position, time: Number.isFinite(sent) ? sent : Date.now() };
        }
        return xid === undefined
          ? { kind: 'message', prefix, content, position, transactional }
          : { kind: 'message', prefix, content, position, transactional, xid };
      }
      case 0x53: {
        // 'S' Stream Start: xid, first-segment flag
        const xid = String(this.u32());
        const first = buf[this.at] === 1;
        this.inBlock = true;
        return { kind: 'stream-start', xid, first };
      }
      case 0x45: // 'E' Stream Stop
        this.inBlock = false;
        return { kind: 'stream-stop' };
      case 0x63: {
        // 'c' Stream Commit: xid, flags, commit LSN, end LSN, commit time (as Commit, after the xid)
        const xid = String(this.u32());
        return { kind: 'stream-commit', xid, position: lsnAt(buf, this.at + 9), time: timeAt(buf, this.at + 17) };
      }
      case 0x41: {
        // 'A' Stream Abort: xid, subxid (protocol 4's abort LSN and time are not requested)
        const xid = String(this.u32());
        return { kind: 'stream-abort', xid, subxid: String(this.u32()) };
      }
      default:
        return undefined; // 'Y' type, 'O' origin: nothing Ferry needs
    }
  }

  private change(change: Change, xid: string | undefined): StreamEvent {
    return xid === undefined ? { kind: 'change', change } : { kind: 'change', change, xid };
  }

  /** The xid field that protocol 2 puts after the tag inside a streamed block. */
  private xid(): string | undefined {
    return this.inBlock ? String(this.u32()) : undefined;
  }

  private relation(oid: number): DecodedRelation {
    const rel = this.relations.get(oid);
    if (!rel) throw new Error(`pgoutput: a change refers to relation ${oid}, which was never described`);
    return rel;
  }

  private u32(): number {
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }

  private i16(): number {
    const v = this.buf.readInt16BE(this.at);
    this.at += 2;
    return v;
  }

  private cstring(): string {
    const end = this.buf.indexOf(0, this.at);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const s = this.buf.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }

  private text(n: number): string {
    const start = this.at;
    const end = start + n;
    if (end > this.buf.length) throw new Error('pgoutput: a value runs past the end of its message');
    this.at = end;
    return fastSlice ? (this.buf as Sliceable).utf8Slice!(start, end) : this.buf.toString('utf8', start, end);
  }

  /** A TupleData: 'n' null, 't' text (and 'b', never requested), 'u' unchanged TOAST (left out of the image). */
  private tuple(rel: DecodedRelation): RowImage {
    const buf = this.buf;
    const n = this.i16();
    const values = this.values;
    let complete = n === rel.names.length && rel.Row !== null;
    for (let i = 0; i < n; i++) {
      const kind = buf[this.at++];
      if (kind === 0x74 || kind === 0x62) {
        const len = buf.readInt32BE(this.at);
        this.at += 4;
        values[i] = this.text(len);
      } else if (kind === 0x6e) values[i] = null;
      else if (kind === 0x75) {
        values[i] = null;
        complete = false;
        this.unchanged[i] = 1;
      } else throw new Error(`pgoutput: unknown tuple value kind ${kind}`);
    }
    if (complete) return new rel.Row!(values);
    // Some column not sent (unchanged TOAST), or a tuple that does not match its relation: key by key.
    const row: RowImage = {};
    for (let i = 0; i < n; i++) {
      const name = i < rel.names.length ? rel.names[i]! : `#${i + 1}`;
      if (this.unchanged[i] === 1) this.unchanged[i] = 0;
      else if (name === '__proto__') Object.defineProperty(row, name, { value: values[i], enumerable: true, writable: true, configurable: true });
      else row[name] = values[i]!;
    }
    return row;
  }
}
