/**
 * Cutover and teardown against the deployed state (the DynamoDB store), for `ferry aws stop|verify|cleanup`:
 *
 * - stop: the same request as local `ferry stop` (phase `stopping` in the state store). The Fargate streamer sees
 *   it, applies everything up to the source's position at that moment, re-syncs the target's sequences, writes the
 *   cutover checkpoint and exits; the supervisor does not relaunch a stopped flow. Then verify runs.
 * - verify: compare every range of every table on both sides (row count + checksum), as `ferry verify` does.
 * - cleanup: drop the slot and publication on the source (WAL is no longer retained) and Ferry's bookkeeping on
 *   the target; the flow becomes `done`.
 *
 * The CLI reaches the databases itself: with the config file's `source`/`target` when it has them, else with the
 * deployment's Secrets Manager copies of SourceUrl/TargetUrl (outputs sourceUrlSecret/targetUrlSecret).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { connect, pgEndpoint } from '../adapters/postgres/connect.js';
import { PgSnapshotSource } from '../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../adapters/postgres/snapshot-target.js';
import type { LoadedConfig } from '../config/load.js';
import { CDC_CHECKPOINT } from '../core/cdc/streamer.js';
import { FerryError } from '../core/errors.js';
import type { FlowRecord } from '../core/model.js';
import type { StateStore } from '../core/ports/state-store.js';
import { verifyFlow, type VerifyReport } from '../core/verify/verify.js';
import { hasMongoEndpoint } from '../runtime/local/engines.js';
import { releaseFlow } from './bookkeeping.js';
import { openVerifySides } from './verify-sides.js';
import { CUTOVER_CHECKPOINT, STREAMING_PHASES } from '../runtime/aws/streamer-process.js';

type Write = (text: string) => void;

export interface StopOptions {
  timeoutMs?: number;
  pollMs?: number;
  log?: Write;
}

/** Ask the deployed streamer to drain and wait until it applied up to the source's position and synced sequences. */
export async function awsStop(store: StateStore, flowId: string, opts: StopOptions = {}): Promise<void> {
  const log = opts.log ?? ((t) => process.stderr.write(t));
  const flow = await requireFlow(store, flowId);
  const before = JSON.stringify((await store.getCheckpoint(flowId, CUTOVER_CHECKPOINT)) ?? null);
  if (flow.phase === 'stopped' && before !== 'null') {
    log(`ferry: flow ${flowId} is already stopped (drained, sequences synced)\n`);
    return;
  }
  if (!(STREAMING_PHASES as readonly string[]).includes(flow.phase) && flow.phase !== 'stopped') {
    throw new FerryError(`flow ${flowId} is ${flow.phase}, not streaming: nothing to stop`, 'see `ferry aws status`; a snapshot-only flow needs no stop');
  }
  await store.updateFlow(flowId, { phase: 'stopping' });
  log(`ferry: asked the streamer of flow ${flowId} to drain and stop\n`);
  const until = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  let lastNote = 0;
  for (;;) {
    await sleep(opts.pollMs ?? 1000);
    const [now, cutover] = await Promise.all([store.getFlow(flowId), store.getCheckpoint(flowId, CUTOVER_CHECKPOINT)]);
    if (now?.phase === 'stopped' && JSON.stringify(cutover ?? null) !== before) {
      const at = (cutover as { position?: unknown } | undefined)?.position;
      log(`ferry: drained up to ${String(at)} and re-synced sequences: the target holds every change committed before the stop\n`);
      return;
    }
    if (Date.now() - lastNote > 15_000) {
      lastNote = Date.now();
      log(`ferry: ${now?.phase ?? 'unknown'}: applied up to ${String((await store.getCheckpoint(flowId, CDC_CHECKPOINT)) ?? '-')}\n`);
    }
    if (Date.now() > until) {
      throw new FerryError(
        `the streamer of flow ${flowId} did not confirm the drain within ${Math.round((opts.timeoutMs ?? 1_800_000) / 60_000)} minutes`,
        'is a streamer task running? see `ferry aws status` and the streamer log group; the request stays, so it drains when one runs',
      );
    }
  }
}

export async function awsVerify(store: StateStore, config: LoadedConfig, flowId: string, out: Write = (t) => process.stdout.write(t)): Promise<VerifyReport> {
  const flow = await requireFlow(store, flowId);
  // A MongoDB endpoint: the pair's canonical digests (verify-sides.ts); PostgreSQL → PostgreSQL as before.
  const sides = hasMongoEndpoint(config) ? openVerifySides(config, flow) : undefined;
  const source = sides?.source ?? new PgSnapshotSource(config.source, { connections: 2 });
  const target = sides?.target ?? new PgSnapshotTarget(config.target, { connections: 2 });
  try {
    const report = await verifyFlow({ source, target }, flow, { concurrency: 2, ...sides?.options });
    const lines = report.tables.map(
      (t) =>
        `  ${(t.differing === 0 ? 'identical' : `DIFFERS in ${t.differing}/${t.ranges} range(s)`).padEnd(28)} ${t.table}  source ${t.sourceRows} rows, target ${t.targetRows} rows`,
    );
    for (const d of report.diffs) lines.push(`  range ${d.table} ${d.label}: source ${d.source.rows} rows, target ${d.target.rows} rows`);
    lines.push(report.ok ? 'verify: source and target are identical' : `verify: ${report.diffs.length} range(s) differ`);
    out(`${lines.join('\n')}\n`);
    return report;
  } finally {
    if (sides) await sides.close();
    else await Promise.allSettled([(source as PgSnapshotSource).close(), (target as PgSnapshotTarget).close()]);
  }
}

export async function awsCleanup(store: StateStore, config: LoadedConfig, flowId: string, out: Write = (t) => process.stdout.write(t)): Promise<void> {
  const flow = await requireFlow(store, flowId);
  if ((STREAMING_PHASES as readonly string[]).includes(flow.phase)) {
    throw new FerryError(`flow ${flowId} is ${flow.phase}: its streamer is running (and supervised)`, 'run `ferry aws stop` first');
  }
  if (hasMongoEndpoint(config)) {
    const done = await releaseFlow(config, flowId);
    await store.updateFlow(flowId, { phase: 'done' });
    out(`flow ${flowId}: ${done.join('; ')}\n`);
    return;
  }
  const changes = new PgChangeSource(config.source);
  try {
    await changes.cleanup(flowId);
  } finally {
    await changes.close();
  }
  const target: pg.Client = await connect(pgEndpoint(config.target, 'target'));
  try {
    await target.query(`DELETE FROM _ferry.snapshot_progress WHERE flow = $1`, [flowId]).catch(() => {});
    await target.query(`DELETE FROM _ferry.cdc_position WHERE flow = $1 OR starts_with(flow, $1 || '#')`, [flowId]).catch(() => {});
    const { rows } = await target
      .query(`SELECT (SELECT count(*) FROM _ferry.snapshot_progress) + (SELECT count(*) FROM _ferry.cdc_position) AS n`)
      .catch(() => ({ rows: [{ n: '0' }] }));
    if (Number(rows[0]?.n ?? 0) === 0) await target.query('DROP SCHEMA IF EXISTS _ferry CASCADE');
  } finally {
    await target.end();
  }
  await store.updateFlow(flowId, { phase: 'done' });
  out(`flow ${flowId}: replication slot and publication dropped; target bookkeeping removed\n`);
}

async function requireFlow(store: StateStore, flowId: string): Promise<FlowRecord> {
  const flow = await store.getFlow(flowId);
  if (!flow) throw new FerryError(`flow ${flowId} is not in the deployed state table`, 'start it with `ferry aws start`');
  return flow;
}
