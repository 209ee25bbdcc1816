/**
 * Checksums of documents: the count, and an order-independent digest (the sum modulo 2^128 of each document's MD5
 * over its canonical Extended JSON). The same documents give the same digest on any MongoDB deployment, whatever
 * the order they are read in. Comparable only with another digest of this kind (a PostgreSQL table's digest is
 * over its own text forms): `checksumKind`.
 */
import { createHash } from 'node:crypto';
import type { Document } from 'mongodb';
import { toCanonical } from '../../core/codec/ejson.js';

export const MONGO_CHECKSUM_KIND = 'mongo-md5-ejson-sum128';
const MOD = 1n << 128n;

export class DocumentDigest {
  rows = 0;
  private sum = 0n;
  add(doc: Document): void {
    this.rows++;
    this.sum = (this.sum + BigInt(`0x${createHash('md5').update(toCanonical(doc)).digest('hex')}`)) % MOD;
  }
  get hash(): string {
    return this.sum.toString(16).padStart(32, '0');
  }
}

export async function digestDocuments(docs: AsyncIterable<Document>): Promise<{ rows: number; hash: string }> {
  const d = new DocumentDigest();
  for await (const doc of docs) d.add(doc);
  return { rows: d.rows, hash: d.hash };
}
