/** The replication protocol and pgoutput v1 decoding on hand-built messages (formats from the PostgreSQL manual). */
import { describe, expect, it } from 'vitest';
import { decodeReplicationMessage, PgoutputDecoder, standbyStatusUpdate } from '../src/adapters/postgres/cdc/pgoutput-decode.js';

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

  it('keeps relations by OID and decodes rows as text, null and absent (unchanged TOAST)', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(relation)).toEqual({
      tag: 'relation',
      relation: {
        oid: 16400, schema: 'app', name: 't', replicaIdentity: 'd',
        columns: [
          { name: 'id', typeOid: 20, typeMod: -1, key: true },
          { name: 'body', typeOid: 25, typeMod: -1, key: false },
          { name: 'note', typeOid: 1043, typeMod: 24, key: false },
        ],
      },
    });
    const insert = Buffer.concat([ch('I'), i32(16400), ch('N'), i16(3), text('9223372036854775807'), text('héllo'), ch('n')]);
    expect(d.decode(insert)).toMatchObject({ tag: 'insert', row: { id: '9223372036854775807', body: 'héllo', note: null } });
    const update = Buffer.concat([ch('U'), i32(16400), ch('K'), i16(3), text('1'), ch('n'), ch('n'), ch('N'), i16(3), text('2'), ch('u'), text('x')]);
    const u = d.decode(update) as { row: Record<string, unknown>; old: Record<string, unknown> };
    expect(u.row).toEqual({ id: '2', note: 'x' });
    expect('body' in u.row).toBe(false);
    expect(u.old).toEqual({ id: '1', body: null, note: null });
    const del = Buffer.concat([ch('D'), i32(16400), ch('K'), i16(3), text('2'), ch('n'), ch('n')]);
    expect(d.decode(del)).toMatchObject({ tag: 'delete', old: { id: '2' } });
  });

  it('a renamed table arrives as a new Relation message for the same OID', () => {
    const d = new PgoutputDecoder();
    d.decode(relation);
    d.decode(Buffer.concat([ch('R'), i32(16400), str('app'), str('t2'), ch('f'), i16(1), u8(1), str('id'), i32(20), i32(-1)]));
    const m = d.decode(Buffer.concat([ch('I'), i32(16400), ch('N'), i16(1), text('5')]));
    expect(m).toMatchObject({ tag: 'insert', relation: { name: 't2', replicaIdentity: 'f' }, row: { id: '5' } });
  });

  it('decodes begin, commit, truncate and logical messages', () => {
    const d = new PgoutputDecoder();
    d.decode(relation);
    const t = 1_700_000_000_123;
    expect(d.decode(Buffer.concat([ch('B'), i64(0x3_0000_0100n), i64(micros(t)), i32(777)]))).toEqual({ tag: 'begin', finalLsn: '3/100', time: t, xid: 777 });
    expect(d.decode(Buffer.concat([ch('C'), u8(0), i64(0x3_0000_0100n), i64(0x3_0000_0138n), i64(micros(t))]))).toEqual({
      tag: 'commit', commitLsn: '3/100', endLsn: '3/138', time: t,
    });
    expect(d.decode(Buffer.concat([ch('T'), i32(1), u8(3), i32(16400)]))).toMatchObject({ tag: 'truncate', cascade: true, restartIdentity: true, relations: [{ name: 't' }] });
    expect(d.decode(Buffer.concat([ch('M'), u8(0), i64(0x500n), str('ferry_heartbeat'), i32(3), Buffer.from('123')]))).toEqual({
      tag: 'message', transactional: false, lsn: '0/500', prefix: 'ferry_heartbeat', content: '123',
    });
  });

  it('a change for a relation never described is an error, not a silent drop', () => {
    expect(() => new PgoutputDecoder().decode(Buffer.concat([ch('I'), i32(1), ch('N'), i16(0)]))).toThrow(/relation 1/);
  });
});
