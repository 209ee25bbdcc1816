import { existsSync } from 'node:fs';
import { loadConfigFile } from '../config/load.js';
import { FerryError } from '../core/errors.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { openLocalStateStore } from '../runtime/local/state.js';

/** Progress read from the state store: works from another terminal while `ferry run` writes. */
export async function statusCommand(path: string, opts: { json: boolean }): Promise<number> {
  const config = await loadConfigFile(path);
  if (!existsSync(config.state.path)) {
    throw new FerryError(`no state at ${config.state.path}: this flow has not run yet`, `start it with \`ferry run ${path}\``);
  }
  const store = await openLocalStateStore(config.state.path);
  try {
    const id = flowIdOf(config);
    const flow = await store.getFlow(id);
    if (!flow) throw new FerryError(`flow ${id} is not in ${config.state.path}`, `start it with \`ferry run ${path}\``);
    const counts = await store.countJobs(id);
    const failed = await store.listJobs(id, 'failed');
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ flow: id, phase: flow.phase, tables: counts, failed }, null, 2)}\n`);
      return 0;
    }
    const lines = [`flow ${id}: ${flow.phase}${flow.error ? ` (${flow.error})` : ''}`];
    for (const [table, c] of Object.entries(counts)) {
      const pct = c.estimatedRows > 0 ? Math.min(100, (100 * c.rows) / c.estimatedRows) : c.done === c.total ? 100 : 0;
      lines.push(
        `  ${table.padEnd(40)} ${String(c.done).padStart(5)}/${c.total} ranges  ${String(c.rows).padStart(12)} rows  ` +
          `${pct.toFixed(0).padStart(3)}%${c.running ? `  ${c.running} running` : ''}${c.failed ? `  ${c.failed} FAILED` : ''}`,
      );
    }
    for (const j of failed) lines.push(`  failed: ${j.table} ${j.label}: ${j.error}`);
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
