/**
 * Decoding the streaming replication protocol (CopyBoth messages) and pgoutput protocol version 1, as documented in
 * "Streaming Replication Protocol" and "Logical Replication Message Formats" of the PostgreSQL manual.
 *
 * Values stay the text pgoutput sent ('t'), null for 'n'; an unchanged TOAST value ('u') leaves the column out of
 * the row image (it must be left as it is). Relations are keyed by OID, as the protocol keys them: a Relation
 * message replaces what was known for that OID (a renamed table or column arrives as a new Relation message).
 */
import type { RowImage } from '../../../core/ports/change-source.js';

/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_MS = 946_684_800_000;

export interface DecodedRelation {
  oid: number;
  schema: string;
  name: string;
  replicaIdentity: string;
  columns: { name: string; typeOid: number; typeMod: number; key: boolean }[];
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: string; time: number; xid: number }
  | { tag: 'commit'; commitLsn: string; endLsn: string; time: number }
  | { tag: 'relation'; relation: DecodedRelation }
  | { tag: 'insert'; relation: DecodedRelation; row: RowImage }
  | { tag: 'update'; relation: DecodedRelation; row: RowImage; old: RowImage | null }
  | { tag: 'delete'; relation: DecodedRelation; old: RowImage }
  | { tag: 'truncate'; relations: DecodedRelation[]; cascade: boolean; restartIdentity: boolean }
  | { tag: 'message'; transactional: boolean; lsn: string; prefix: string; content: string }
  | { tag: 'other' };

/** A CopyData message of the replication stream. */
export type ReplicationMessage =
  | { type: 'xlog'; start: string; end: string; body: Buffer }
  | { type: 'keepalive'; end: string; time: number; replyRequested: boolean }
  | { type: 'unknown'; code: number };

function lsnAt(buf: Buffer, at: number): string {
  return `${buf.readUInt32BE(at).toString(16).toUpperCase()}/${buf.readUInt32BE(at + 4).toString(16).toUpperCase()}`;
}

/** A PostgreSQL timestamp (microseconds since 2000-01-01) as Unix milliseconds. */
function timeAt(buf: Buffer, at: number): number {
  return Number(buf.readBigInt64BE(at) / 1000n) + PG_EPOCH_MS;
}

export function decodeReplicationMessage(chunk: Buffer): ReplicationMessage {
  switch (chunk[0]) {
    case 0x77: // 'w' XLogData: start, end, send time, then the plugin's message
      return { type: 'xlog', start: lsnAt(chunk, 1), end: lsnAt(chunk, 9), body: chunk.subarray(25) };
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

class Reader {
  at = 0;
  constructor(private readonly buf: Buffer) {}
  u8(): number {
    return this.buf[this.at++]!;
  }
  i16(): number {
    const v = this.buf.readInt16BE(this.at);
    this.at += 2;
    return v;
  }
  i32(): number {
    const v = this.buf.readInt32BE(this.at);
    this.at += 4;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  lsn(): string {
    const v = lsnAt(this.buf, this.at);
    this.at += 8;
    return v;
  }
  time(): number {
    const v = timeAt(this.buf, this.at);
    this.at += 8;
    return v;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.at);
    if (end < 0) throw new Error('pgoutput: unterminated string');
    const s = this.buf.toString('utf8', this.at, end);
    this.at = end + 1;
    return s;
  }
  text(n: number): string {
    const s = this.buf.toString('utf8', this.at, this.at + n);
    this.at += n;
    return s;
  }
}

/** Decodes one session's pgoutput messages; remembers relations by OID (they are sent once per session, and again when they change). */
export class PgoutputDecoder {
  readonly relations = new Map<number, DecodedRelation>();

  decode(body: Buffer): PgoutputMessage {
    const r = new Reader(body);
    const tag = r.u8();
    switch (tag) {
      case 0x42: // 'B'
        return { tag: 'begin', finalLsn: r.lsn(), time: r.time(), xid: r.u32() };
      case 0x43: {
        // 'C': flags, commit LSN, end LSN, commit time
        r.u8();
        return { tag: 'commit', commitLsn: r.lsn(), endLsn: r.lsn(), time: r.time() };
      }
      case 0x52: {
        // 'R'
        const oid = r.u32();
        const schema = r.cstring();
        const name = r.cstring();
        const replicaIdentity = String.fromCharCode(r.u8());
        const n = r.i16();
        const columns: DecodedRelation['columns'] = [];
        for (let i = 0; i < n; i++) {
          const flags = r.u8();
          columns.push({ name: r.cstring(), typeOid: r.u32(), typeMod: r.i32(), key: (flags & 1) === 1 });
        }
        const relation = { oid, schema, name, replicaIdentity, columns };
        this.relations.set(oid, relation);
        return { tag: 'relation', relation };
      }
      case 0x49: {
        // 'I': relation, 'N', new tuple
        const relation = this.relation(r.u32());
        r.u8();
        return { tag: 'insert', relation, row: this.tuple(r, relation) };
      }
      case 0x55: {
        // 'U': relation, optional 'K' (old key) or 'O' (old row), 'N' new tuple
        const relation = this.relation(r.u32());
        let kind = r.u8();
        let old: RowImage | null = null;
        if (kind === 0x4b || kind === 0x4f) {
          old = this.tuple(r, relation);
          kind = r.u8();
        }
        return { tag: 'update', relation, row: this.tuple(r, relation), old };
      }
      case 0x44: {
        // 'D': relation, 'K' or 'O', old tuple
        const relation = this.relation(r.u32());
        r.u8();
        return { tag: 'delete', relation, old: this.tuple(r, relation) };
      }
      case 0x54: {
        // 'T': number of relations, options, OIDs
        const n = r.i32();
        const options = r.u8();
        const relations: DecodedRelation[] = [];
        for (let i = 0; i < n; i++) relations.push(this.relation(r.u32()));
        return { tag: 'truncate', relations, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
      }
      case 0x4d: {
        // 'M': flags, LSN, prefix, length, content
        const transactional = (r.u8() & 1) === 1;
        const lsn = r.lsn();
        const prefix = r.cstring();
        const content = r.text(r.i32());
        return { tag: 'message', transactional, lsn, prefix, content };
      }
      default:
        return { tag: 'other' }; // 'Y' type, 'O' origin: nothing Ferry needs
    }
  }

  private relation(oid: number): DecodedRelation {
    const rel = this.relations.get(oid);
    if (!rel) throw new Error(`pgoutput: a change refers to relation ${oid}, which was never described`);
    return rel;
  }

  private tuple(r: Reader, rel: DecodedRelation): RowImage {
    const n = r.i16();
    const row: RowImage = {};
    for (let i = 0; i < n; i++) {
      const name = rel.columns[i]?.name ?? `#${i + 1}`;
      const kind = r.u8();
      if (kind === 0x6e) row[name] = null; // 'n'
      else if (kind === 0x74 || kind === 0x62) row[name] = r.text(r.i32()); // 't' (and 'b', never requested)
      // 'u': unchanged TOAST value, not sent: the column stays absent
    }
    return row;
  }
}
