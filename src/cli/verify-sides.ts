/**
 * What `ferry verify` compares, per engine pair (the canonical forms are in src/core/codec/canonical.ts):
 *
 * | source → target | digest | computed | ranges |
 * |---|---|---|---|
 * | PostgreSQL → PostgreSQL | `pg-md5-rowtext-60` | inside each database (only digests travel) | the planned ranges |
 * | MongoDB → MongoDB | `mongo-md5-ejson-sum128`: each document's canonical EJSON, field order kept | by Ferry, documents streamed | the planned `_id` ranges |
 * | PostgreSQL → MongoDB | `xe-doc-sorted-ejson-md5-sum128`: the codec's document, sorted canonical EJSON | by Ferry on both sides | planned ranges when the key orders alike in both engines (integers, uuid, boolean), else whole tables |
 * | MongoDB → PostgreSQL | `xe-pgrow-normalized-md5-sum128`: the codec's row, values normalized by type | by Ferry on both sides | planned `_id` ranges of ObjectIds, strings, numbers, dates; else whole tables |
 *
 * `--repair` copies a differing range again through the flow's own adapters (cross-engine: through the codec bridge,
 * after deleting the range on the target with the predicate verify used, since those loads only upsert).
 */
import { MongoDocFormChecksums, MongoRowFormChecksums } from '../adapters/mongodb/checksum.js';
import { MongoSnapshotSource } from '../adapters/mongodb/snapshot-source.js';
import { MongoSnapshotTarget } from '../adapters/mongodb/snapshot-target.js';
import { PgDocFormChecksums, PgRowFormChecksums } from '../adapters/postgres/checksum-canonical.js';
import { PgSnapshotSource } from '../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../config/load.js';
import { engineOf } from '../config/schema.js';
import { mongoRowsToPg, pgRowsToMongo } from '../core/codec/bridge.js';
import { mongoRangesTranslate, pgKeyOrdersLikeId } from '../core/codec/canonical-ranges.js';
import { tableKey, type FlowRecord, type Json, type TableSchema } from '../core/model.js';
import type { Checksums } from '../core/ports/checksum.js';
import type { SnapshotSource } from '../core/ports/source.js';
import type { SnapshotTarget } from '../core/ports/target.js';
import type { VerifyOptions } from '../core/verify/verify.js';
import { onMongo } from './mongo-errors.js';

export interface VerifySides {
  pair: string;
  source: Checksums;
  target: Checksums;
  options: Pick<VerifyOptions, 'wholeTable' | 'targetTable'>;
  repair: {
    source: SnapshotSource;
    target: SnapshotTarget;
    clearRange?: (table: TableSchema, range: Json) => Promise<void>;
    targetTable?: (flow: FlowRecord, t: TableSchema) => TableSchema;
  };
  close(): Promise<void>;
}

const asIs = (_flow: FlowRecord, t: TableSchema) => t;

export function openVerifySides(config: LoadedConfig, flow: FlowRecord): VerifySides {
  const sides = pairSides(config, flow);
  return { ...sides, source: named(sides.source, 'source', config), target: named(sides.target, 'target', config) };
}

function pairSides(config: LoadedConfig, flow: FlowRecord): VerifySides {
  const from = engineOf(config.source);
  const to = engineOf(config.target);
  const n = config.workers;
  if (from === 'postgres' && to === 'postgres') {
    const source = new PgSnapshotSource(config.source, { connections: n });
    const target = new PgSnapshotTarget(config.target, { connections: n });
    return { pair: 'PostgreSQL → PostgreSQL', source, target, options: {}, repair: { source, target }, close: closer(source, target) };
  }
  if (from === 'mongodb' && to === 'mongodb') {
    const source = new MongoSnapshotSource(config.source);
    const target = new MongoSnapshotTarget(config.target);
    return { pair: 'MongoDB → MongoDB', source, target, options: {}, repair: { source, target }, close: closer(source, target) };
  }
  if (from === 'postgres') {
    const source = new PgSnapshotSource(config.source, { connections: n });
    const target = new MongoSnapshotTarget(config.target);
    const docs = new MongoDocFormChecksums(target.client, config.target.url ?? '');
    return {
      pair: 'PostgreSQL → MongoDB',
      source: new PgDocFormChecksums(source),
      target: docs,
      options: { wholeTable: (t) => !pgKeyOrdersLikeId(t), targetTable: asIs },
      repair: { source, target: pgRowsToMongo(target), clearRange: (t, r) => docs.clearRange(t, r), targetTable: asIs },
      close: closer(source, target),
    };
  }
  const mappings = config.mongoToPg ?? {};
  const source = new MongoSnapshotSource(config.source);
  const target = new PgSnapshotTarget(config.target, { connections: n });
  const rows = new PgRowFormChecksums(config.target, mappings, { connections: n });
  return {
    pair: 'MongoDB → PostgreSQL',
    source: new MongoRowFormChecksums(source.client, mappings),
    target: rows,
    options: {
      wholeTable: (t) => !mongoRangesTranslate((flow.ranges[tableKey(t.source)] ?? []).map((r) => r.range)),
      targetTable: asIs,
    },
    repair: { source, target: mongoRowsToPg(target, mappings), clearRange: (t, r) => rows.clearRange(t, r), targetTable: asIs },
    close: closer(source, target, rows),
  };
}

/** A side's checksums with driver errors naming the endpoint. */
function named(c: Checksums, role: 'source' | 'target', config: LoadedConfig): Checksums {
  if (engineOf(config[role]) !== 'mongodb') return c;
  return { checksumKind: c.checksumKind, checksum: (t, r) => onMongo(role, config[role], () => c.checksum(t, r)) };
}

function closer(...parts: { close(): Promise<void> }[]): () => Promise<void> {
  return async () => void (await Promise.allSettled(parts.map((p) => p.close())));
}
