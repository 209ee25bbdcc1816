import pg from 'pg';
import { connect, pgEndpoint } from '../adapters/postgres/connect.js';
import { engineOf, type EndpointConfig } from '../config/schema.js';
import { databaseOfUrl, mongoClient } from '../adapters/mongodb/connect.js';
import { TargetNames } from '../adapters/mongodb/target-names.js';
import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { onMongo } from './mongo-errors.js';

/**
 * Remove one flow's rows from the target's `_ferry` schema, and the schema itself once no other flow uses it.
 * Idempotent: a target without `_ferry` is left as it is. Used by `ferry cleanup` and `ferry reset`.
 */
export async function dropTargetBookkeeping(target: EndpointConfig, flow: string): Promise<void> {
  const client: pg.Client = await connect(pgEndpoint(target, 'target'));
  try {
    const { rows: present } = await client.query(`SELECT to_regnamespace('_ferry') IS NOT NULL AS present`);
    if (!present[0]?.present) return;
    await client.query(`DELETE FROM _ferry.snapshot_progress WHERE flow = $1`, [flow]).catch(() => {});
    await client.query(`DELETE FROM _ferry.cdc_position WHERE flow = $1 OR starts_with(flow, $1 || '#')`, [flow]).catch(() => {});
    const { rows } = await client
      .query(`SELECT (SELECT count(*) FROM _ferry.snapshot_progress) + (SELECT count(*) FROM _ferry.cdc_position) AS n`)
      .catch(() => ({ rows: [{ n: '0' }] }));
    if (Number(rows[0]?.n ?? 0) === 0) await client.query('DROP SCHEMA IF EXISTS _ferry CASCADE');
  } finally {
    await client.end();
  }
}

/**
 * The same on a MongoDB target: the flow's marker documents in Ferry's `_ferry` collection (range progress
 * `snapshot/<flow>/…`, stream positions `cdc/<flow>` and `cdc/<flow>#<lane>`), and the collection once no other flow
 * has documents in it (the `ferry` database it may sit in then goes with it: MongoDB has no empty databases).
 * Nothing else: the migrated collections are the user's.
 */
export async function dropMongoTargetBookkeeping(target: EndpointConfig, flow: string): Promise<void> {
  const client = mongoClient(target, 'target');
  try {
    const markers = new TargetNames(client, databaseOfUrl(target.url ?? '')).markers();
    const f = flow.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    await markers.deleteMany({ _id: { $regex: `^(snapshot/${f}/|cdc/${f}(#|$))` } } as never);
    if ((await markers.countDocuments({}, { limit: 1 })) === 0) {
      await markers.drop().catch((err: { code?: number }) => {
        if (err.code !== 26) throw err; // NamespaceNotFound: already gone
      });
    }
  } finally {
    await client.close();
  }
}

/**
 * What `ferry cleanup` and `ferry reset` release for one flow, per engine: a PostgreSQL source's slot and publication
 * (MongoDB keeps nothing per flow: a change stream is only a cursor), and the target's bookkeeping.
 */
export async function releaseFlow(config: { source: EndpointConfig; target: EndpointConfig }, flow: string): Promise<string[]> {
  const done: string[] = [];
  if (engineOf(config.source) === 'postgres') {
    const source = new PgChangeSource(config.source);
    try {
      await source.cleanup(flow);
    } finally {
      await source.close();
    }
    done.push('replication slot and publication dropped');
  } else {
    done.push('nothing to drop on the MongoDB source (a change stream keeps no state there)');
  }
  if (engineOf(config.target) === 'postgres') {
    await dropTargetBookkeeping(config.target, flow);
    done.push("target bookkeeping (_ferry schema rows) removed");
  } else {
    await onMongo('target', config.target, () => dropMongoTargetBookkeeping(config.target, flow));
    done.push("target bookkeeping (the flow's documents in the _ferry collection) removed");
  }
  return done;
}

/** What releaseFlow will touch, for reset's confirmation. */
export function releaseDescription(config: { source: EndpointConfig; target: EndpointConfig }, flow: string): { source: string; target: string } {
  return {
    source: engineOf(config.source) === 'postgres' ? `replication slot and publication ferry_${flow} (if any)` : 'nothing (MongoDB keeps no per-flow state)',
    target:
      engineOf(config.target) === 'postgres'
        ? `flow ${flow} in schema _ferry (the schema if no other flow uses it)`
        : `flow ${flow}'s documents in collection _ferry (the collection if no other flow uses it)`,
  };
}
