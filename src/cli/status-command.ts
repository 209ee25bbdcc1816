import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { CDC_CHECKPOINT, CDC_LAG, CDC_LIVE, type LiveStatus } from '../core/cdc/streamer.js';
import type { LagInfo } from '../core/ports/change-source.js';
import { formatBytes } from '../progress/summary.js';
import { withFlow } from './flow-context.js';

/** Progress read from the state store (and, when streaming, the slot's lag from the source): works from any terminal. */
export async function statusCommand(path: string, opts: { json: boolean }): Promise<number> {
  return withFlow(path, async ({ config, store, flow }) => {
    const counts = await store.countJobs(flow.id);
    const failed = await store.listJobs(flow.id, 'failed');
    let cdc: { position: unknown; lagSeconds?: number; slot?: LagInfo; reconnects?: number; warning?: { at: number; message: string } } | undefined;
    if (config.mode === 'snapshot+cdc') {
      const position = await store.getCheckpoint(flow.id, CDC_CHECKPOINT);
      const lag = (await store.getCheckpoint(flow.id, CDC_LAG)) as { sourceTime: number; appliedAt: number } | undefined;
      const source = new PgChangeSource(config.source);
      const slot = await source.lag(flow.id).catch(() => undefined);
      await source.close();
      // Behind by the last applied transaction's age, plus the time since, if changes are waiting.
      const lagSeconds = lag ? ((lag.appliedAt - lag.sourceTime) + (slot && slot.lagBytes > 0 ? Date.now() - lag.appliedAt : 0)) / 1000 : undefined;
      cdc = { position, lagSeconds, slot };
      // The streamer's live record (lag from the oldest uncommitted change; stale when the streamer stopped updating it).
      const live = (await store.getCheckpoint(flow.id, CDC_LIVE)) as LiveStatus | undefined;
      if (live) {
        const stale = Math.max(0, Date.now() - live.at - 3000);
        cdc.lagSeconds = Math.max(cdc.lagSeconds ?? 0, (live.lagMs + (slot && slot.lagBytes > 0 ? stale : 0)) / 1000);
        cdc.reconnects = live.reconnects;
        cdc.warning = live.warning;
      }
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ flow: flow.id, phase: flow.phase, tables: counts, failed, cdc }, null, 2)}\n`);
      return 0;
    }
    const lines = [`flow ${flow.id}: ${flow.phase}${flow.error ? ` (${flow.error})` : ''}`];
    for (const [table, c] of Object.entries(counts)) {
      const pct = c.estimatedRows > 0 ? Math.min(100, (100 * c.rows) / c.estimatedRows) : c.done === c.total ? 100 : 0;
      lines.push(
        `  ${table.padEnd(40)} ${String(c.done).padStart(5)}/${c.total} ranges  ${String(c.rows).padStart(12)} rows  ` +
          `${(c.done === c.total ? 100 : pct).toFixed(0).padStart(3)}%${c.running ? `  ${c.running} running` : ''}${c.failed ? `  ${c.failed} FAILED` : ''}`,
      );
    }
    for (const j of failed) lines.push(`  failed: ${j.table} ${j.label}: ${j.error}`);
    if (cdc) {
      lines.push(`  streaming: applied up to ${String(cdc.position ?? '(not started)')}` +
        (cdc.lagSeconds !== undefined ? `, lag ${cdc.lagSeconds.toFixed(1)} s` : ''));
      if (cdc.slot) {
        lines.push(`  slot: ${cdc.slot.active ? 'active' : 'inactive'}, ${formatBytes(cdc.slot.lagBytes)} behind, ${formatBytes(cdc.slot.retainedBytes)} of WAL retained`);
      } else {
        lines.push('  slot: not found (not created yet, or dropped by `ferry cleanup`)');
      }
      if (cdc.reconnects) lines.push(`  reconnects: ${cdc.reconnects}`);
      if (cdc.warning) lines.push(`  last warning (${Math.round((Date.now() - cdc.warning.at) / 1000)} s ago): ${cdc.warning.message}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  });
}
