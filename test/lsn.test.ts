import { describe, expect, it } from 'vitest';
import { bigIntToLsn, compareLsn, lsnToBigInt, normalizeLsn } from '../src/adapters/postgres/cdc/lsn.js';

describe('LSNs', () => {
  it('normalizes padded and unpadded forms to one canonical text', () => {
    expect(normalizeLsn('00000000/0179CD48')).toBe('0/179CD48');
    expect(normalizeLsn('0/179cd48')).toBe('0/179CD48');
    expect(normalizeLsn('00000001/00000000')).toBe('1/0');
    expect(normalizeLsn('FFFFFFFF/FFFFFFFF')).toBe('FFFFFFFF/FFFFFFFF');
    expect(() => normalizeLsn('1/2/3')).toThrow(/not an LSN/);
    expect(() => normalizeLsn('100000000/0')).toThrow(/not an LSN/);
  });

  it('compares as 64-bit numbers, never as strings', () => {
    expect(compareLsn('0/A0000000', '1/0')).toBe(-1); // as strings '0/A…' > '1/0' would be wrong the other way
    expect(compareLsn('00000000/0179CD48', '0/179CD48')).toBe(0);
    expect(compareLsn('0/FF', '0/100')).toBe(-1);
    expect(bigIntToLsn(lsnToBigInt('12/ABCDEF01') + 1n)).toBe('12/ABCDEF02');
    expect(bigIntToLsn(lsnToBigInt('0/FFFFFFFF') + 1n)).toBe('1/0');
  });
});
