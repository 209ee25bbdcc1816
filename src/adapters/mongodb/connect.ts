/** MongoDB clients from Ferry's endpoint config: `url: mongodb://…` (or mongodb+srv://), database from its path. */
import { MongoClient, type MongoClientOptions } from 'mongodb';
import type { EndpointConfig } from '../../config/schema.js';
import { ConfigError } from '../../core/errors.js';
import { EXACT_BSON } from '../../core/codec/ejson.js';

export function isMongoUrl(url: string | undefined): boolean {
  return !!url && /^mongodb(\+srv)?:\/\//i.test(url);
}

/** The database a URL names (`mongodb://h/db?…`), or undefined. */
export function databaseOfUrl(url: string): string | undefined {
  const m = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]*)/i.exec(url);
  const db = m?.[1] ? decodeURIComponent(m[1]) : '';
  return db === '' ? undefined : db;
}

export function mongoClient(e: EndpointConfig, role: 'source' | 'target'): MongoClient {
  if (!e.url || !isMongoUrl(e.url)) throw new ConfigError(`${role}.url: expected mongodb://host:27017/db?replicaSet=rs0`);
  const opts: MongoClientOptions = {
    appName: `ferry-${role}`,
    ...EXACT_BSON,
    // Reads of a flow see only majority-committed data (a write that may roll back is never copied); writes are
    // acknowledged by a majority before a range or a position is recorded as done.
    readConcern: { level: 'majority' },
    writeConcern: { w: 'majority' },
    retryWrites: true,
    serverSelectionTimeoutMS: 15_000,
  };
  if (e.ssl === true || e.ssl === 'require' || e.ssl === 'verify-full') opts.tls = true;
  if (e.ssl === 'require') opts.tlsAllowInvalidCertificates = true;
  if (e.sslRootCert) opts.tlsCAFile = e.sslRootCert;
  return new MongoClient(e.url, opts);
}
