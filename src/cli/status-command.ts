import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { CDC_CHECKPOINT, CDC_LAG, CDC_LIVE, type LiveStatus } from '../core/cdc/streamer.js';
import { formatBytes } from '../progress/summary.js';
import { FerryError } from '../core/errors.js';
import { ACTIVITY_CHECKPOINT, RUN_ERROR_CHECKPOINT, type Activity, type RunError } from '../progress/activity.js';
import { withMaybeFlow } from './flow-context.js';
import { engineOf } from '../config/schema.js';
import type { LagInfo } from '../core/ports/change-source.js';
import { changeStreamLine, describePosition, MongoLagReader, type ChangeStreamLag } from '../ui/mongo-stream-lag.js';

/**
 * Exit 0, or 1 when the flow's last run failed (its cause is shown).
 * Progress read from the state store (and, when streaming, the slot's lag from the source): works from any terminal. */
export async function statusCommand(path: string, opts: { json: boolean }): Promise<number> {
  return withMaybeFlow(path, async ({ config, store, flow: found, id }) => {
    const runError = ((await store.getCheckpoint(id, RUN_ERROR_CHECKPOINT)) ?? undefined) as RunError | undefined;
    const activity = (await store.getCheckpoint(id, ACTIVITY_CHECKPOINT)) as Activity | undefined;
    if (!found) {
      // The run failed before its plan was stored (a connection, a check): the flow is not there, but why is known.
      throw new FerryError(
        `flow ${id} is not in ${config.state.path}` +
          (runError ? `: its last run failed during ${runError.phase} at ${new Date(runError.at).toISOString()}: ${runError.message}` : ''),
        runError?.hint ?? `start it with \`ferry run ${path}\``,
      );
    }
    const flow = found;
    const counts = await store.countJobs(flow.id);
    const failed = await store.listJobs(flow.id, 'failed');
    let cdc:
      | {
          position: unknown;
          lagSeconds?: number;
          slot?: { active: boolean; lagBytes: number; retainedBytes: number };
          /** A MongoDB source: the change stream's lag in place of a slot's (src/ui/mongo-stream-lag.ts). */
          changeStream?: ChangeStreamLag;
          reconnects?: number;
          warning?: { at: number; message: string };
        }
      | undefined;
    if (config.mode === 'snapshot+cdc') {
      const position = await store.getCheckpoint(flow.id, CDC_CHECKPOINT);
      const lag = (await store.getCheckpoint(flow.id, CDC_LAG)) as { sourceTime: number; appliedAt: number } | undefined;
      const mongo = engineOf(config.source) === 'mongodb';
      let slot: LagInfo | undefined;
      let changeStream: ChangeStreamLag | undefined;
      if (mongo) {
        // No slot on MongoDB: the checkpoint's resume token against the source's cluster time and oplog window.
        const reader = new MongoLagReader(config.source);
        changeStream = await reader.lag(position);
        await reader.close();
      } else {
        const source = new PgChangeSource(config.source);
        slot = await source.lag(flow.id).catch(() => undefined);
        await source.close();
      }
      // Behind by the last applied transaction's age, plus the time since, if changes are waiting.
      const lagSeconds = lag ? ((lag.appliedAt - lag.sourceTime) + (slot && (slot.lagBytes ?? 0) > 0 ? Date.now() - lag.appliedAt : 0)) / 1000 : undefined;
      // JSON output keeps its `retainedBytes` field (LagInfo's are optional and named `retained` for other engines).
      cdc = { position, lagSeconds, slot: slot ? { active: slot.active, lagBytes: slot.lagBytes ?? 0, retainedBytes: slot.retained ?? 0 } : undefined, changeStream };
      // The streamer's live record (lag from the oldest uncommitted change; stale when the streamer stopped updating it).
      const live = (await store.getCheckpoint(flow.id, CDC_LIVE)) as LiveStatus | undefined;
      if (live) {
        const stale = Math.max(0, Date.now() - live.at - 3000);
        cdc.lagSeconds = Math.max(cdc.lagSeconds ?? 0, (live.lagMs + (slot && (slot.lagBytes ?? 0) > 0 ? stale : 0)) / 1000);
        cdc.reconnects = live.reconnects;
        cdc.warning = live.warning;
      }
    }
    if (opts.json) {
      const phase = runError ? 'failed' : flow.phase;
      process.stdout.write(
        `${JSON.stringify({ flow: flow.id, phase, ...(runError ? { failure: runError } : {}), tables: counts, failed, cdc, warnings: activity?.warnings ?? [] }, null, 2)}\n`,
      );
      return runError ? 1 : 0;
    }
    const lines = runError ? failureLines(flow.id, runError) : [`flow ${flow.id}: ${flow.phase}${flow.error ? ` (${flow.error})` : ''}`];
    for (const [table, c] of Object.entries(counts)) {
      const pct = c.estimatedRows > 0 ? Math.min(100, (100 * c.rows) / c.estimatedRows) : c.done === c.total ? 100 : 0;
      lines.push(
        `  ${table.padEnd(40)} ${String(c.done).padStart(5)}/${c.total} ranges  ${String(c.rows).padStart(12)} rows  ` +
          `${(c.done === c.total ? 100 : pct).toFixed(0).padStart(3)}%${c.running ? `  ${c.running} running` : ''}${c.failed ? `  ${c.failed} FAILED` : ''}`,
      );
    }
    for (const j of failed) lines.push(`  failed: ${j.table} ${j.label}: ${j.error}`);
    if (cdc) {
      lines.push(`  streaming: applied up to ${describePosition(cdc.position)}` +
        (cdc.lagSeconds !== undefined ? `, lag ${cdc.lagSeconds.toFixed(1)} s` : ''));
      if (engineOf(config.source) === 'mongodb') {
        lines.push(`  ${cdc.changeStream ? changeStreamLine(cdc.changeStream) : 'change stream: not started (no resume token stored yet)'}`);
      } else if (cdc.slot) {
        lines.push(`  slot: ${cdc.slot.active ? 'active' : 'inactive'}, ${formatBytes(cdc.slot.lagBytes)} behind, ${formatBytes(cdc.slot.retainedBytes)} of WAL retained`);
      } else {
        lines.push('  slot: not found (not created yet, or dropped by `ferry cleanup`)');
      }
      if (cdc.reconnects) lines.push(`  reconnects: ${cdc.reconnects}`);
      if (cdc.warning) lines.push(`  last warning (${Math.round((Date.now() - cdc.warning.at) / 1000)} s ago): ${cdc.warning.message}`);
    }
    for (const w of (activity?.warnings ?? []).slice(-5)) lines.push(`  warning (${new Date(w.at).toISOString()}): ${w.message}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return runError ? 1 : 0;
  });
}

function failureLines(id: string, e: RunError): string[] {
  const lines = [`flow ${id}: FAILED during ${e.phase} at ${new Date(e.at).toISOString()}: ${e.message}`];
  if (e.hint) lines.push(`  what to do: ${e.hint}`);
  lines.push('  (run `ferry run` again once fixed: it resumes where the flow stands)');
  return lines;
}
