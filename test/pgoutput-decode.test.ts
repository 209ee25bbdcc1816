/** The replication protocol and pgoutput v1/v2 decoding on hand-built messages (formats from the PostgreSQL manual). */
import { describe, expect, it } from 'vitest';
import { decodeReplicationMessage, PgoutputDecoder, standbyStatusUpdate, XLOG_BODY_OFFSET } from '../src/adapters/postgres/cdc/pgoutput-decode.js';

const PG_EPOCH_MS = 946_684_800_000;
const u8 = (n: number) => Buffer.from([n]);
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const i64 = (n: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(n); return b; };
const str = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), u8(0)]);
const ch = (c: string) => Buffer.from(c, 'ascii');
const text = (s: string) => Buffer.concat([ch('t'), i32(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
const micros = (ms: number) => BigInt(ms - PG_EPOCH_MS) * 1000n;

describe('replication protocol', () => {
  it('a Standby Status Update carries exactly the given LSN as written, flushed and applied', () => {
    const b = standbyStatusUpdate('1/2A0', true, PG_EPOCH_MS + 5);
    expect(b.length).toBe(34);
    expect(String.fromCharCode(b[0]!)).toBe('r');
    for (const at of [1, 9, 17]) expect(b.readBigUInt64BE(at)).toBe(0x1_0000_02a0n);
    expect(b.readBigInt64BE(25)).toBe(5000n);
    expect(b[33]).toBe(1);
  });

  it('decodes keepalives and XLogData headers', () => {
    const k = Buffer.concat([ch('k'), i64(0x2_0000_0010n), i64(micros(1_700_000_000_000)), u8(1)]);
    expect(decodeReplicationMessage(k)).toEqual({ type: 'keepalive', end: '2/10', time: 1_700_000_000_000, replyRequested: true });
    const w = Buffer.concat([ch('w'), i64(0x100n), i64(0x200n), i64(0n), ch('B')]);
    const m = decodeReplicationMessage(w);
    expect(m).toMatchObject({ type: 'xlog', start: '0/100', end: '0/200' });
    expect((m as { body: Buffer }).body.toString()).toBe('B');
  });
});

describe('pgoutput v1', () => {
  const relation = Buffer.concat([
    ch('R'), i32(16400), str('app'), str('t'), ch('d'), i16(3),
    u8(1), str('id'), i32(20), i32(-1),
    u8(0), str('body'), i32(25), i32(-1),
    u8(0), str('note'), i32(1043), i32(24),
  ]);
  const columns = [
    { name: 'id', typeOid: 20, typeMod: -1, key: true },
    { name: 'body', typeOid: 25, typeMod: -1, key: false },
    { name: 'note', typeOid: 1043, typeMod: 24, key: false },
  ];

  it('keeps relations by OID and decodes rows as text, null and absent (unchanged TOAST)', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(relation)).toEqual({ kind: 'relation', relation: { id: '16400', table: 'app.t', replicaIdentity: 'd', columns } });
    const insert = Buffer.concat([ch('I'), i32(16400), ch('N'), i16(3), text('9223372036854775807'), text('héllo'), ch('n')]);
    const ins = d.decode(insert);
    expect(ins).toStrictEqual({ kind: 'change', change: { op: 'insert', table: 'app.t', row: { id: '9223372036854775807', body: 'héllo', note: null } } });
    // A row is a plain object with its columns in order, whichever way it was built.
    const row = (ins as { change: { row: object } }).change.row;
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(['id', 'body', 'note']);
    expect(JSON.parse(JSON.stringify(row))).toEqual({ id: '9223372036854775807', body: 'héllo', note: null });
    const update = Buffer.concat([ch('U'), i32(16400), ch('K'), i16(3), text('1'), ch('n'), ch('n'), ch('N'), i16(3), text('2'), ch('u'), text('x')]);
    const u = d.decode(update) as { change: { row: Record<string, unknown>; old: Record<string, unknown> } };
    expect(u.change.row).toEqual({ id: '2', note: 'x' });
    expect('body' in u.change.row).toBe(false);
    expect(u.change.old).toEqual({ id: '1', body: null, note: null });
    // After a row with an unchanged TOAST column, the next full row is complete again.
    const again = d.decode(Buffer.concat([ch('U'), i32(16400), ch('N'), i16(3), text('3'), text('b'), text('n')]));
    expect(again).toEqual({ kind: 'change', change: { op: 'update', table: 'app.t', row: { id: '3', body: 'b', note: 'n' }, old: null } });
    const del = Buffer.concat([ch('D'), i32(16400), ch('K'), i16(3), text('2'), ch('n'), ch('n')]);
    expect(d.decode(del)).toEqual({ kind: 'change', change: { op: 'delete', table: 'app.t', old: { id: '2', body: null, note: null } } });
  });

  it('decodes in place from an offset of an XLogData chunk', () => {
    const d = new PgoutputDecoder();
    const header = Buffer.concat([ch('w'), i64(0x100n), i64(0x200n), i64(0n)]);
    d.decode(Buffer.concat([header, relation]), XLOG_BODY_OFFSET);
    const ev = d.decode(Buffer.concat([header, ch('I'), i32(16400), ch('N'), i16(3), text('7'), ch('n'), text('z')]), XLOG_BODY_OFFSET);
    expect(ev).toEqual({ kind: 'change', change: { op: 'insert', table: 'app.t', row: { id: '7', body: null, note: 'z' } } });
  });

  it('column names are data, never code: quotes, backslashes, line breaks and __proto__', () => {
    const d = new PgoutputDecoder();
    const odd = ['a"b', 'c\\d', 'e\nf', "g'); throw 1; ('", '__proto__'];
    d.decode(Buffer.concat([ch('R'), i32(1), str('s'), str('x'), ch('f'), i16(odd.length), ...odd.flatMap((n) => [u8(0), str(n), i32(25), i32(-1)])]));
    const ev = d.decode(Buffer.concat([ch('I'), i32(1), ch('N'), i16(odd.length), ...odd.map((_, i) => text(String(i)))])) as { change: { row: Record<string, string> } };
    const row = ev.change.row;
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.keys(row)).toEqual(odd);
    odd.forEach((n, i) => expect(Object.getOwnPropertyDescriptor(row, n)?.value).toBe(String(i)));
    // Without __proto__, the generated constructor is used: the same names still land verbatim.
    d.decode(Buffer.concat([ch('R'), i32(2), str('s'), str('y'), ch('f'), i16(4), ...odd.slice(0, 4).flatMap((n) => [u8(0), str(n), i32(25), i32(-1)])]));
    const ev2 = d.decode(Buffer.concat([ch('I'), i32(2), ch('N'), i16(4), ...odd.slice(0, 4).map((_, i) => text(`v${i}`))])) as { change: { row: Record<string, string> } };
    expect(ev2.change.row).toStrictEqual({ 'a"b': 'v0', 'c\\d': 'v1', 'e\nf': 'v2', "g'); throw 1; ('": 'v3' });
  });

  it('a renamed table arrives as a new Relation message for the same OID', () => {
    const d = new PgoutputDecoder();
    d.decode(relation);
    d.decode(Buffer.concat([ch('R'), i32(16400), str('app'), str('t2'), ch('f'), i16(1), u8(1), str('id'), i32(20), i32(-1)]));
    const m = d.decode(Buffer.concat([ch('I'), i32(16400), ch('N'), i16(1), text('5')]));
    expect(m).toEqual({ kind: 'change', change: { op: 'insert', table: 'app.t2', row: { id: '5' } } });
  });

  it('decodes begin, commit, truncate, logical messages and heartbeats', () => {
    const d = new PgoutputDecoder();
    d.decode(relation);
    const t = 1_700_000_000_123;
    expect(d.decode(Buffer.concat([ch('B'), i64(0x3_0000_0100n), i64(micros(t)), i32(777)]))).toEqual({ kind: 'begin', position: '3/100', time: t });
    // The commit's position is the end LSN of the commit record (what the streamer confirms).
    expect(d.decode(Buffer.concat([ch('C'), u8(0), i64(0x3_0000_0100n), i64(0x3_0000_0138n), i64(micros(t))]))).toEqual({ kind: 'commit', position: '3/138', time: t });
    expect(d.decode(Buffer.concat([ch('T'), i32(1), u8(3), i32(16400)]))).toEqual({
      kind: 'change', change: { op: 'truncate', tables: ['app.t'], cascade: true, restartIdentity: true },
    });
    expect(d.decode(Buffer.concat([ch('M'), u8(0), i64(0x500n), str('ferry_heartbeat'), i32(3), Buffer.from('123')]))).toEqual({ kind: 'heartbeat', position: '0/500', time: 123 });
    expect(d.decode(Buffer.concat([ch('M'), u8(1), i64(0xabcdef01n), str('app'), i32(3), Buffer.from('é!')]))).toEqual({
      kind: 'message', prefix: 'app', content: 'é!', position: '0/ABCDEF01', transactional: true,
    });
    // Type and Origin are not used.
    expect(d.decode(Buffer.concat([ch('Y'), i32(99), str('s'), str('ty')]))).toBeUndefined();
  });

  it('times before 2000 and far after decode like 64-bit arithmetic', () => {
    const d = new PgoutputDecoder();
    for (const t of [0, 946_684_800_000, 4_102_444_800_123]) {
      expect(d.decode(Buffer.concat([ch('B'), i64(0x10n), i64(micros(t)), i32(1)]))).toEqual({ kind: 'begin', position: '0/10', time: t });
    }
  });

  it('a change for a relation never described is an error, not a silent drop', () => {
    expect(() => new PgoutputDecoder().decode(Buffer.concat([ch('I'), i32(1), ch('N'), i16(0)]))).toThrow(/relation 1/);
  });

  it('a value that runs past its message is an error', () => {
    const d = new PgoutputDecoder();
    d.decode(relation);
    expect(() => d.decode(Buffer.concat([ch('I'), i32(16400), ch('N'), i16(1), ch('t'), i32(50), Buffer.from('short')]))).toThrow(/past the end/);
  });
});

describe('pgoutput v2: streamed in-progress transactions', () => {
  const xid = 1000;
  const sub = 1001;
  const rel = (x: number) => Buffer.concat([ch('R'), i32(x), i32(16401), str('app'), str('s'), ch('d'), i16(2), u8(1), str('id'), i32(23), i32(-1), u8(0), str('v'), i32(25), i32(-1)]);

  it('decodes a block: Stream Start, Relation/Insert/Update/Delete/Truncate/Message with xid, Stream Stop', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(Buffer.concat([ch('S'), i32(xid), u8(1)]))).toEqual({ kind: 'stream-start', xid: '1000', first: true });
    expect(d.decode(rel(xid))).toEqual({
      kind: 'relation',
      relation: { id: '16401', table: 'app.s', replicaIdentity: 'd', columns: [{ name: 'id', typeOid: 23, typeMod: -1, key: true }, { name: 'v', typeOid: 25, typeMod: -1, key: false }] },
    });
    expect(d.decode(Buffer.concat([ch('I'), i32(xid), i32(16401), ch('N'), i16(2), text('1'), text('a')]))).toEqual({
      kind: 'change', xid: '1000', change: { op: 'insert', table: 'app.s', row: { id: '1', v: 'a' } },
    });
    expect(d.decode(Buffer.concat([ch('U'), i32(sub), i32(16401), ch('K'), i16(2), text('1'), ch('n'), ch('N'), i16(2), text('2'), text('b')]))).toEqual({
      kind: 'change', xid: '1001', change: { op: 'update', table: 'app.s', row: { id: '2', v: 'b' }, old: { id: '1', v: null } },
    });
    expect(d.decode(Buffer.concat([ch('D'), i32(sub), i32(16401), ch('K'), i16(2), text('2'), ch('n')]))).toEqual({
      kind: 'change', xid: '1001', change: { op: 'delete', table: 'app.s', old: { id: '2', v: null } },
    });
    expect(d.decode(Buffer.concat([ch('T'), i32(xid), i32(1), u8(0), i32(16401)]))).toEqual({
      kind: 'change', xid: '1000', change: { op: 'truncate', tables: ['app.s'], cascade: false, restartIdentity: false },
    });
    expect(d.decode(Buffer.concat([ch('M'), i32(sub), u8(1), i64(0x900n), str('app'), i32(2), Buffer.from('hi')]))).toEqual({
      kind: 'message', xid: '1001', prefix: 'app', content: 'hi', position: '0/900', transactional: true,
    });
    expect(d.decode(Buffer.concat([ch('Y'), i32(xid), i32(99), str('s'), str('ty')]))).toBeUndefined();
    expect(d.decode(ch('E'))).toEqual({ kind: 'stream-stop' });
    // After the block, messages have no xid again.
    expect(d.decode(Buffer.concat([ch('I'), i32(16401), ch('N'), i16(2), text('3'), ch('n')]))).toEqual({
      kind: 'change', change: { op: 'insert', table: 'app.s', row: { id: '3', v: null } },
    });
    // A later block of the same transaction is not its first.
    expect(d.decode(Buffer.concat([ch('S'), i32(xid), u8(0)]))).toEqual({ kind: 'stream-start', xid: '1000', first: false });
  });

  it('decodes Stream Commit (position: the end LSN, as Commit) and Stream Abort (top-level and subtransaction)', () => {
    const d = new PgoutputDecoder();
    const t = 1_764_590_000_456;
    expect(d.decode(Buffer.concat([ch('c'), i32(xid), u8(0), i64(0x7_0000_1000n), i64(0x7_0000_1040n), i64(micros(t))]))).toEqual({
      kind: 'stream-commit', xid: '1000', position: '7/1040', time: t,
    });
    expect(d.decode(Buffer.concat([ch('A'), i32(xid), i32(sub)]))).toEqual({ kind: 'stream-abort', xid: '1000', subxid: '1001' });
    expect(d.decode(Buffer.concat([ch('A'), i32(xid), i32(xid)]))).toEqual({ kind: 'stream-abort', xid: '1000', subxid: '1000' });
    // xids are unsigned 32-bit.
    expect(d.decode(Buffer.concat([ch('A'), Buffer.from([0xff, 0xff, 0xff, 0xfe]), Buffer.from([0xff, 0xff, 0xff, 0xff])]))).toEqual({
      kind: 'stream-abort', xid: '4294967294', subxid: '4294967295',
    });
  });
});
