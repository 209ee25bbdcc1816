/**
 * The CLI's commands with a mongodb:// endpoint, without a MongoDB server (none can run here): what each does with
 * the parts it can reach (PostgreSQL, the state file), and the clear error it gives for the MongoDB it cannot reach.
 * The end-to-end runs against a real MongoDB are in test/mongo-verify-e2e.test.ts (skipped without MONGODB_URL).
 */
import { dirname, join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../src/adapters/sqlite/sqlite-state-store.js';
import { PgSnapshotTarget } from '../src/adapters/postgres/snapshot-target.js';
import { pgTableForCollection } from '../src/core/codec/mongo-to-pg.js';
import { CDC_CHECKPOINT, CDC_LAG } from '../src/core/cdc/streamer.js';
import type { FlowRecord, TableSchema } from '../src/core/model.js';
import { Sampler } from '../src/ui/sampler.js';
import { ferry, writeConfig } from './support/ferry-cli.js';
import { freshDatabases, query, usePgPair } from './support/pg-pair.js';

const pair = usePgPair();
/** Nothing listens on port 1: the MongoDB endpoint is unreachable. */
const NO_MONGO = 'mongodb://127.0.0.1:1/app?replicaSet=rs0';

const collection: TableSchema = {
  source: { schema: 'app', name: 'users' },
  target: { schema: 'app', name: 'users' },
  columns: [{ name: '_id', type: 'mongodb:_id', nullable: false }],
  primaryKey: ['_id'],
  estimatedRows: 10,
  estimatedBytes: 100,
  extra: null,
};

/** A resume token of cluster time t.i (KeyString: 0x82, seconds, increment, then the rest). */
const token = (t: number, i: number) => ({ _data: `82${t.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}2B022C0100296E5A1004` });

async function seedFlow(statePath: string, flow: string, positionAgeSeconds: number): Promise<number> {
  mkdirSync(dirname(statePath), { recursive: true });
  const store = new SqliteStateStore(statePath);
  const t = Math.floor(Date.now() / 1000) - positionAgeSeconds;
  const now = Date.now();
  const record: FlowRecord = {
    id: flow,
    phase: 'streaming',
    summary: {},
    tables: [collection],
    ranges: { 'app.users': [{ range: { kind: 'mongo-id', lower: null, upper: null }, label: '_id in [-∞, ∞)', estimatedRows: 10 }] },
    createdAt: now,
    updatedAt: now,
  };
  await store.createFlow(record);
  await store.putCheckpoint(flow, CDC_CHECKPOINT, { token: token(t, 3), clusterTime: `${t}.3` });
  await store.putCheckpoint(flow, CDC_LAG, { sourceTime: t * 1000, appliedAt: now - 1000 });
  await store.close();
  return t;
}

describe('CLI commands with a MongoDB endpoint', () => {
  it('plan: an unreachable MongoDB source is named, with what to check (not an unexpected error)', async () => {
    const urls = await freshDatabases(pair(), 'mplan');
    const config = writeConfig({ name: 'mplan', source: { url: NO_MONGO }, target: { url: urls.targetUrl } });
    const r = await ferry(['plan', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ferry: error: cannot reach source .*127\.0\.0\.1:1/);
    expect(r.stderr).toContain('what to do: check the hosts and port');
    expect(r.stderr).not.toContain('unexpected');
  }, 120_000);

  it('status: a MongoDB source shows the change stream (token age, cluster time, oplog window) where PostgreSQL shows its slot', async () => {
    const urls = await freshDatabases(pair(), 'mstat');
    const config = writeConfig({ name: 'mstat', mode: 'snapshot+cdc', source: { url: NO_MONGO }, target: { url: urls.targetUrl } });
    const statePath = join(dirname(config), 'state.db');
    const t = await seedFlow(statePath, 'mstat', 120);
    const r = await ferry(['status', config]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`streaming: applied up to cluster time ${t}.3 (${new Date(t * 1000).toISOString()})`);
    expect(r.stdout).toMatch(/change stream: resume token 1[12]\d s old \(cluster time \d+\.3\)/);
    expect(r.stdout).toContain('oplog window unknown');
    expect(r.stdout).not.toContain('slot');
    const json = JSON.parse((await ferry(['status', config, '--json'])).stdout) as { cdc: { changeStream: { tokenAgeSeconds: number; clusterTime: string; oplogWindowSeconds: null } } };
    expect(json.cdc.changeStream.clusterTime).toBe(`${t}.3`);
    expect(json.cdc.changeStream.tokenAgeSeconds).toBeGreaterThanOrEqual(119);
    expect(json.cdc.changeStream.oplogWindowSeconds).toBeNull();
  }, 120_000);

  it('dashboard: the sampler reports the change stream lag of a MongoDB position', async () => {
    const config = writeConfig({ name: 'mui', source: { url: NO_MONGO }, target: { url: 'postgres://x@127.0.0.1:1/db' } });
    const statePath = join(dirname(config), 'state.db');
    const t = await seedFlow(statePath, 'mui', 30);
    const store = new SqliteStateStore(statePath);
    try {
      const s = await new Sampler({ store, flow: 'mui', cdc: true }).sample();
      expect(s.streaming?.position).toBe(`cluster time ${t}.3 (${new Date(t * 1000).toISOString()})`);
      expect(s.streaming?.changeStream?.tokenAgeSeconds).toBeGreaterThanOrEqual(29);
      expect(s.streaming?.slot).toBeNull();
    } finally {
      await store.close();
    }
  });

  it('reset: MongoDB → PostgreSQL drops the target bookkeeping and the local state; nothing to drop on the MongoDB source', async () => {
    const urls = await freshDatabases(pair(), 'mreset');
    const target = new PgSnapshotTarget({ url: urls.targetUrl }, { connections: 1 });
    await target.createTables('mreset', [pgTableForCollection(collection)]);
    await target.close();
    await query(urls.targetUrl, `INSERT INTO app.users VALUES ('"u1"', '{"_id":"u1"}')`);
    const config = writeConfig({ name: 'mreset', mode: 'snapshot+cdc', source: { url: NO_MONGO }, target: { url: urls.targetUrl } });
    await seedFlow(join(dirname(config), 'state.db'), 'mreset', 5);
    const r = await ferry(['reset', config, '--yes']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nothing to drop on the MongoDB source');
    expect(r.stdout).toContain('target bookkeeping (_ferry schema rows) removed');
    expect(await query(urls.targetUrl, `SELECT to_regnamespace('_ferry') IS NULL AS gone`)).toEqual([{ gone: 't' }]);
    expect(await query(urls.targetUrl, `SELECT count(*)::text AS n FROM app.users`)).toEqual([{ n: '1' }]);
    const status = await ferry(['status', config]);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('flow mreset is not in');
  }, 120_000);

  it('cleanup: PostgreSQL → MongoDB drops the slot side, then names the MongoDB target it cannot reach', async () => {
    const urls = await freshDatabases(pair(), 'mclean');
    const config = writeConfig({ name: 'mclean', mode: 'snapshot+cdc', source: { url: urls.sourceUrl }, target: { url: NO_MONGO } });
    await seedFlow(join(dirname(config), 'state.db'), 'mclean', 5);
    const r = await ferry(['cleanup', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ferry: error: cannot reach target .*127\.0\.0\.1:1/);
  }, 120_000);

  it('verify: a MongoDB side it cannot reach is named', async () => {
    const urls = await freshDatabases(pair(), 'mver');
    const target = new PgSnapshotTarget({ url: urls.targetUrl }, { connections: 1 });
    await target.createTables('mver', [pgTableForCollection(collection)]);
    await target.close();
    const config = writeConfig({ name: 'mver', source: { url: NO_MONGO }, target: { url: urls.targetUrl } });
    await seedFlow(join(dirname(config), 'state.db'), 'mver', 5);
    const r = await ferry(['verify', config]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach source .*127\.0\.0\.1:1/);
  }, 120_000);
});
