/**
 * Synthetic pgoutput input for bench/decode.ts: CopyData chunks exactly as the walsender frames them (XLogData 'w'
 * header, then a pgoutput message), shaped like bench/cdc.ts's `events` table (bigint, int, text, numeric,
 * timestamptz, jsonb), one transaction of `n` inserts. About 1 row in 10 has non-ASCII text.
 */
const PG_EPOCH_MS = 946_684_800_000;

function xlog(body: Buffer, lsn: bigint): Buffer {
  const h = Buffer.alloc(25);
  h[0] = 0x77;
  h.writeBigUInt64BE(lsn, 1);
  h.writeBigUInt64BE(lsn, 9);
  h.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_MS) * 1000n, 17);
  return Buffer.concat([h, body]);
}

const cstr = (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]);

export function relationMessage(oid: number): Buffer {
  const cols: [string, number, number, boolean][] = [
    ['id', 20, -1, true], ['a', 23, -1, false], ['t', 25, -1, false], ['n', 1700, 917512, false], ['created', 1184, -1, false], ['j', 3802, -1, false],
  ];
  const parts = [Buffer.from('R'), u32(oid), cstr('public'), cstr('events'), Buffer.from('d'), i16(cols.length)];
  for (const [name, type, mod, key] of cols) parts.push(Buffer.from([key ? 1 : 0]), cstr(name), u32(type), i32(mod));
  return Buffer.concat(parts);
}

function u32(n: number) { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; }
function i32(n: number) { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; }
function i16(n: number) { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; }

export function insertMessage(oid: number, g: number): Buffer {
  const vals = [
    String(g),
    String(g % 1000),
    g % 10 === 0 ? `ligne ${g} été ${g.toString(16)}` : `row ${g} ${(g * 2654435761 >>> 0).toString(16).padStart(8, '0')}${(g * 40503 >>> 0).toString(16)}`,
    (g / 7).toFixed(4),
    `2026-12-01 12:${String(g % 60).padStart(2, '0')}:00.${String(g % 1_000_000).padStart(6, '0')}+00`,
    `{"g": ${g}}`,
  ];
  const parts = [Buffer.from('I'), u32(oid), Buffer.from('N'), i16(vals.length)];
  for (const v of vals) {
    const b = Buffer.from(v, 'utf8');
    parts.push(Buffer.from('t'), i32(b.length), b);
  }
  return Buffer.concat(parts);
}

/** begin, relation, n inserts, commit: as CopyData chunks. */
export function syntheticStream(n: number): Buffer[] {
  const oid = 16_400;
  let lsn = 0x1_0000_0000n;
  const out: Buffer[] = [];
  const t = BigInt(Date.now() - PG_EPOCH_MS) * 1000n;
  const begin = Buffer.alloc(21);
  begin[0] = 0x42;
  begin.writeBigUInt64BE(lsn + BigInt(n) * 100n, 1);
  begin.writeBigInt64BE(t, 9);
  begin.writeUInt32BE(777, 17);
  out.push(xlog(begin, lsn), xlog(relationMessage(oid), lsn));
  for (let g = 1; g <= n; g++) out.push(xlog(insertMessage(oid, g), (lsn += 100n)));
  const commit = Buffer.alloc(26);
  commit[0] = 0x43;
  commit.writeBigUInt64BE(lsn, 2);
  commit.writeBigUInt64BE(lsn + 48n, 10);
  commit.writeBigInt64BE(t, 18);
  out.push(xlog(commit, lsn));
  return out;
}
