/**
 * `ferry plan` for a flow with a MongoDB endpoint: the adapters `ferry run` uses (src/runtime/local/engines.ts), the
 * same checks in the same order (the source's deployment checks and, for snapshot+cdc, its change-stream preflight;
 * then the target's), and the tables, ranges, mapping and how verify will compare each. Writes nothing anywhere.
 */
import type { LoadedConfig } from '../config/load.js';
import { engineOf } from '../config/schema.js';
import { mongoRangesTranslate, pgKeyOrdersLikeId } from '../core/codec/canonical-ranges.js';
import { pgTableForCollection } from '../core/codec/mongo-to-pg.js';
import { pgIndexesToMongo } from '../core/codec/pg-to-mongo-indexes.js';
import { tableKey } from '../core/model.js';
import { describePlan } from '../core/snapshot/plan.js';
import { openFlowAdapters } from '../runtime/local/engines.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { mongoEndpointError } from './mongo-errors.js';

const ENGINE = { postgres: 'PostgreSQL', mongodb: 'MongoDB' } as const;

export async function planMongo(config: LoadedConfig): Promise<number> {
  const cdc = config.mode === 'snapshot+cdc';
  const flow = flowIdOf(config);
  const warnings: string[] = [];
  const adapters = openFlowAdapters(config, { cdc, warn: (m) => warnings.push(m), heartbeatMs: config.cdc.heartbeatSeconds * 1000 });
  const from = engineOf(config.source);
  const to = engineOf(config.target);
  try {
    const onSource = <T>(p: Promise<T>) => p.catch((err) => Promise.reject(from === 'mongodb' ? mongoEndpointError(err, 'source', config.source) : err));
    const onTarget = <T>(p: Promise<T>) => p.catch((err) => Promise.reject(to === 'mongodb' ? mongoEndpointError(err, 'target', config.target) : err));
    const { tables, ranges } = await onSource(
      describePlan(
        adapters.source,
        { include: config.include, exclude: config.exclude, rename: config.rename, tables: config.tables, objects: { roles: config.roles, owner: config.schema.owner } },
        config.rowsPerRange,
      ),
    );
    await onSource(adapters.preflight(tables, flow));
    await onSource(adapters.changes?.preflight(flow, tables) ?? Promise.resolve());
    const truncate = config.target.onExistingRows === 'truncate';
    await onTarget(adapters.target.preflight(tables, { truncate: false, resuming: truncate }));
    const out = [`${ENGINE[from]} → ${ENGINE[to]}${cdc ? ', snapshot then change stream' : ', snapshot'}`];
    let total = 0;
    for (const t of tables) {
      const key = tableKey(t.source);
      const r = ranges[key] ?? [];
      total += r.length;
      const renamed = key === tableKey(t.target) ? '' : ` -> ${tableKey(t.target)}`;
      let shape: string;
      let byRange: boolean;
      if (from === 'mongodb' && to === 'postgres') {
        const mapping = config.mongoToPg?.[key];
        shape = `table (${pgTableForCollection(t, mapping).columns.map((c) => `${c.name} ${c.type}`).join(', ')})`;
        byRange = mongoRangesTranslate(r.map((x) => x.range));
      } else if (from === 'postgres') {
        shape = `documents, _id = ${t.primaryKey.length === 1 ? t.primaryKey[0] : `{ ${t.primaryKey.join(', ')} }`}`;
        byRange = pgKeyOrdersLikeId(t);
      } else {
        shape = 'documents as they are';
        byRange = true;
      }
      out.push(`${key}${renamed}  ~${t.estimatedRows} ${from === 'mongodb' ? 'documents' : 'rows'}, ${r.length} range(s); into ${shape}; verify: ${byRange ? 'by range' : 'whole table (the key orders differently in the two engines)'}`);
      for (const x of r) out.push(`    ${x.label}  ~${x.estimatedRows}`);
      if (from === 'postgres' && to === 'mongodb') {
        // What finalize will build (pg-to-mongo-indexes.ts), and each index it will not, said now rather than after the load.
        const ix = pgIndexesToMongo(t);
        if (ix.indexes.length) out.push(`    indexes after the load: ${ix.indexes.map((i) => `${i.name} (${i.key.map(([f, d]) => `${f}${d < 0 ? ' desc' : ''}`).join(', ')})${i.unique ? ' unique' : ''}${i.partialFilterExpression ? ' partial' : ''}`).join('; ')}`);
        warnings.push(...ix.warnings);
      }
    }
    if (from === 'postgres') out.push('btree indexes and unique constraints become MongoDB indexes after the load (above); other schema objects (other constraints, views, functions, sequences) are not carried to MongoDB');
    if (to === 'postgres') out.push('target tables get their primary key (_id) at finalize; nothing else of the collection (its indexes) is carried');
    for (const w of warnings) out.push(`warning: ${w}`);
    out.push(`${tables.length} ${from === 'mongodb' ? 'collection' : 'table'}(s), ${total} range job(s), ${config.workers} worker(s)`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    await Promise.allSettled([adapters.source.close(), adapters.target.close(), adapters.changes?.close(), adapters.applier?.close()]);
  }
}
