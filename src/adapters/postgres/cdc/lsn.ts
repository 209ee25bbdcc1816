/**
 * LSNs are 64-bit WAL positions written `XXXXXXXX/XXXXXXXX` in hex. Messages pad them (`00000000/0179CD48`), the
 * catalog does not (`0/179CD48`): always compare as numbers, never as strings.
 */
export function lsnToBigInt(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  if (!m) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function bigIntToLsn(n: bigint): string {
  return `${(n >> 32n).toString(16).toUpperCase()}/${(n & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The canonical (unpadded, upper-case) form, which is what Ferry stores as a position. Hot path: no BigInt. */
export function normalizeLsn(lsn: string): string {
  const m = /^0*([0-9A-Fa-f]+)\/0*([0-9A-Fa-f]+)$/.exec(lsn);
  if (!m || m[1]!.length > 8 || m[2]!.length > 8) throw new Error(`not an LSN: ${JSON.stringify(lsn)}`);
  return `${m[1]}/${m[2]}`.toUpperCase();
}

export function compareLsn(a: string, b: string): number {
  const x = lsnToBigInt(a);
  const y = lsnToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
