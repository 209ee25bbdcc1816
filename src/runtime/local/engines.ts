/**
 * Which adapters a flow runs with, from its endpoints' engines (additive to the PostgreSQL → PostgreSQL wiring, which
 * is unchanged): PostgreSQL or MongoDB on each side, with the codec bridge (src/core/codec/bridge.ts) between
 * engines. Shared by `ferry run` and the AWS entry points.
 */
import { MongoChangeSource } from '../../adapters/mongodb/change-source.js';
import { MongoChangeTarget } from '../../adapters/mongodb/change-target.js';
import { checkMongoSource } from '../../adapters/mongodb/preflight.js';
import { DriverStreamServer } from '../../adapters/mongodb/server.js';
import { MongoSnapshotSource } from '../../adapters/mongodb/snapshot-source.js';
import { MongoSnapshotTarget } from '../../adapters/mongodb/snapshot-target.js';
import { PgChangeSource } from '../../adapters/postgres/cdc/change-source.js';
import { PgChangeTarget } from '../../adapters/postgres/cdc/change-target.js';
import { streamerConnections } from '../../core/cdc/streamer.js';
import { PgSnapshotSource } from '../../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../../config/load.js';
import { describeEndpoint } from '../../config/endpoint.js';
import { engineOf } from '../../config/schema.js';
import { mongoChangesToPg, mongoRowsToPg, pgChangesToMongo, pgRowsToMongo } from '../../core/codec/bridge.js';
import type { TableSchema } from '../../core/model.js';
import type { ChangeSource } from '../../core/ports/change-source.js';
import type { ChangeTarget } from '../../core/ports/change-target.js';
import type { SnapshotSource } from '../../core/ports/source.js';
import type { SnapshotTarget } from '../../core/ports/target.js';
import { openPgFlowAdapters } from './pg-adapters.js';

export interface FlowAdapters {
  source: SnapshotSource & { useSnapshot?(name: string | undefined): void };
  target: SnapshotTarget;
  changes?: ChangeSource;
  applier?: ChangeTarget;
  /** The source and target checks that are not part of a port (PostgreSQL's safety checks; MongoDB's deployment checks). */
  preflight(tables: TableSchema[], flow: string): Promise<void>;
}

/** Either endpoint is MongoDB (else the PostgreSQL-only wiring of each runtime applies unchanged). */
export function hasMongoEndpoint(config: LoadedConfig): boolean {
  return engineOf(config.source) === 'mongodb' || engineOf(config.target) === 'mongodb';
}

export function openFlowAdapters(config: LoadedConfig, opts: { cdc: boolean; warn: (m: string) => void; heartbeatMs: number }): FlowAdapters {
  const from = engineOf(config.source);
  const to = engineOf(config.target);
  // One wiring for PostgreSQL → PostgreSQL (pg-adapters.ts, which `ferry run` imports without this module).
  if (from === 'postgres' && to === 'postgres') return openPgFlowAdapters(config, opts);
  let source: FlowAdapters['source'];
  let changes: ChangeSource | undefined;
  let sourceCheck: (tables: TableSchema[]) => Promise<void>;
  if (from === 'mongodb') {
    const snap = new MongoSnapshotSource(config.source);
    source = snap;
    const where = describeEndpoint(config.source, { withUser: false, unparseable: 'the source' });
    if (opts.cdc) {
      const cs = new MongoChangeSource(new DriverStreamServer(snap.client, { where, warn: opts.warn }));
      // The snapshot source owns the client: closing the change source must not close it twice.
      cs.close = async () => {};
      changes = cs;
    }
    sourceCheck = async (tables) => {
      if (!opts.cdc) await checkMongoSource(snap.client, tables, { where, cdc: false, warn: opts.warn });
    };
  } else {
    source = new PgSnapshotSource(config.source, { connections: config.workers + 1 });
    // Whole transactions only: the MongoDB target cannot undo an aborted in-progress one (no savepoints).
    changes = opts.cdc ? new PgChangeSource(config.source, { warn: opts.warn, heartbeatMs: opts.heartbeatMs, streamInProgress: false }) : undefined;
    sourceCheck = async () => {};
  }
  let target: SnapshotTarget;
  let applier: ChangeTarget | undefined;
  if (to === 'mongodb') {
    const mt = new MongoSnapshotTarget(config.target);
    target = from === 'postgres' ? pgRowsToMongo(mt) : mt;
    const ct = opts.cdc ? new MongoChangeTarget(config.target) : undefined;
    applier = ct && from === 'postgres' ? pgChangesToMongo(ct) : ct;
    // PostgreSQL's stream hooks (schema, partitions, new tables) apply DDL on a PostgreSQL target: not here. A column
    // added on the source still arrives, as its text (pgRowToDocument).
    if (changes && from === 'postgres') (changes as { streamHooks?: unknown }).streamHooks = undefined;
  } else {
    const pt = new PgSnapshotTarget(config.target, { connections: config.workers + 1 });
    target = mongoRowsToPg(pt, config.mongoToPg);
    applier = opts.cdc ? mongoChangesToPg(new PgChangeTarget(config.target, { connections: streamerConnections(config.cdc) }), config.mongoToPg) : undefined;
  }
  return { source, target, changes, applier, preflight: (tables) => sourceCheck(tables) };
}
