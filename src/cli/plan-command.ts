import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { checkSourceAndTarget } from '../adapters/postgres/preflight-safety.js';
import { PgSnapshotSource } from '../adapters/postgres/snapshot-source.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { PgSnapshotTarget } from '../adapters/postgres/snapshot-target.js';
import { planOf } from '../adapters/postgres/ddl.js';
import { objectSummary } from '../adapters/postgres/objects-target.js';
import { loadConfigFile } from '../config/load.js';
import { tableKey } from '../core/model.js';
import { describePlan } from '../core/snapshot/plan.js';
import { hasMongoEndpoint } from '../runtime/local/engines.js';
import { planMongo } from './plan-mongo.js';

/** A dry run: describe, partition, and every check `ferry run` makes for the config's mode, writing nothing anywhere. */
export async function planCommand(path: string): Promise<number> {
  const config = await loadConfigFile(path);
  if (hasMongoEndpoint(config)) return planMongo(config);
  const source = new PgSnapshotSource(config.source, { connections: 2 });
  const target = new PgSnapshotTarget(config.target, { connections: 1 });
  try {
    const { tables, ranges } = await describePlan(
      source,
      { include: config.include, exclude: config.exclude, rename: config.rename, tables: config.tables, objects: { roles: config.roles, owner: config.schema.owner } },
      config.rowsPerRange,
    );
    // The same checks as `ferry run`, in the same order (see planSnapshot).
    const cdc = config.mode === 'snapshot+cdc';
    const flow = flowIdOf(config);
    await checkSourceAndTarget(config.source, config.target, tables, { cdc, flow });
    if (cdc) {
      const changes = new PgChangeSource(config.source);
      try {
        await changes.preflight(flow, tables);
      } finally {
        await changes.close();
      }
    }
    // With truncate configured, a non-empty target is expected: check types only, and truncate nothing.
    const truncate = config.target.onExistingRows === 'truncate';
    await target.preflight(tables, { truncate: false, resuming: truncate });
    const out: string[] = [];
    let total = 0;
    for (const t of tables) {
      const r = ranges[tableKey(t.source)] ?? [];
      total += r.length;
      const renamed = tableKey(t.source) === tableKey(t.target) ? '' : ` -> ${tableKey(t.target)}`;
      const key = t.primaryKey.length ? `key (${t.primaryKey.join(', ')})` : 'no primary key: block ranges';
      out.push(`${tableKey(t.source)}${renamed}  ~${t.estimatedRows} rows, ${key}, ${r.length} range(s)`);
      const ctl = t.controls;
      if (ctl) {
        const bits = [
          ...(ctl.excluded.length ? [`without ${ctl.excluded.join(', ')}`] : []),
          ...Object.entries(ctl.rename).map(([a, b]) => `${a} -> ${b}`),
          ...(ctl.where ? [`where ${ctl.where}`] : []),
        ];
        const ferrySide = [...(ctl.excluded.length && !ctl.published.columns ? ['columns'] : []), ...(ctl.where && !ctl.published.where ? ['row filter'] : [])];
        out.push(`    controls: ${bits.join('; ')}${ferrySide.length ? ` (streamed: ${ferrySide.join(' and ')} applied by Ferry, not the publication)` : ''}`);
        if (ctl.dropped?.length) out.push(`    left out (they use an excluded column): ${ctl.dropped.join(', ')}`);
      }
      for (const x of r) out.push(`    ${x.label}  ~${x.estimatedRows} rows`);
    }
    out.push(...objectSummary(planOf(tables)));
    out.push(`${tables.length} table(s), ${total} range job(s), ${config.workers} worker(s)`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await Promise.allSettled([source.close(), target.close()]);
  }
}
