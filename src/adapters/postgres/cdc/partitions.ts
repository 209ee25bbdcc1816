/**
 * PostgreSQL pieces for partitions while streaming: which leaves each streamed partitioned table has now, the target
 * partition that matches a source one (created when missing), the resync of one partition's rows, and DETACH.
 * Also the row copy a table added while streaming needs. Everything on the target runs on the open apply batch's
 * connection, so it commits with the changes around it, atomically with the flow's position.
 */
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { pipeline } from 'node:stream/promises';
import { tableKey, type TableName, type TableSchema } from '../../../core/model.js';
import type { Selection } from '../../../core/ports/source.js';
import { renameTable } from '../../../core/selection.js';
import { queryJson } from '../catalog.js';
import { copiedColumns } from '../copy-format.js';
import { columnList, qualified } from '../sql.js';
import type { SourceRelation } from './schema-evolution.js';

/** The leaves under each partitioned table of the flow, now (key: source table key of the root). */
export async function readLeaves(client: pg.ClientBase, roots: TableName[]): Promise<Map<string, TableName[]>> {
  const out = new Map<string, TableName[]>(roots.map((r) => [tableKey(r), []]));
  if (roots.length === 0) return out;
  const rows = await queryJson<{ root: string; schema: string; name: string }>(
    client,
    `SELECT coalesce(json_agg(json_build_object('root', w->>'schema' || '.' || (w->>'name'), 'schema', n.nspname, 'name', c.relname)
                     ORDER BY n.nspname, c.relname), '[]')::text AS j
     FROM jsonb_array_elements($1::jsonb) w
     CROSS JOIN LATERAL pg_partition_tree(to_regclass(quote_ident(w->>'schema') || '.' || quote_ident(w->>'name'))) t
     JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE t.isleaf AND t.level > 0`,
    [JSON.stringify(roots)],
  );
  for (const r of rows) out.get(r.root)?.push({ schema: r.schema, name: r.name });
  return out;
}

/** A partition's target name, as introspect.ts names the partitions it creates: the root's schema, or the renames. */
export function partitionTarget(part: TableName, root: TableSchema, sel: Selection): TableName {
  return part.schema === root.source.schema ? { schema: root.target.schema, name: part.name } : renameTable(part, sel.rename);
}

/**
 * Make sure the target has the partition (and any sub-partitioned parent between it and the root) that matches the
 * source's, with the same bound. An existing target table of that name that is not yet a partition is attached.
 */
export async function ensureTargetPartition(
  target: pg.ClientBase,
  rel: SourceRelation,
  root: TableSchema,
  sel: Selection,
): Promise<TableName> {
  const chain = [...rel.ancestors.slice(1), { schema: rel.schema, name: rel.name, bound: rel.bound, partitionBy: rel.partitionBy }];
  let parent = root.target;
  for (const p of chain) {
    const t = partitionTarget(p, root, sel);
    const { rows } = await target.query<{ exists: string | null; parent: string | null }>(
      `SELECT to_regclass($1)::text AS exists,
              (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = to_regclass($1)) AS parent`,
      [qualified(t)],
    );
    const sub = p.partitionBy ? ` PARTITION BY ${p.partitionBy}` : '';
    if (!rows[0]?.exists) {
      await target.query(`CREATE TABLE ${qualified(t)} PARTITION OF ${qualified(parent)} ${p.bound}${sub}`);
    } else if (!rows[0].parent) {
      await target.query(`ALTER TABLE ${qualified(parent)} ATTACH PARTITION ${qualified(t)} ${p.bound}`);
    }
    parent = t;
  }
  return parent;
}

/** Detach a target partition from its parent, if it is attached (the source detached or dropped it). */
export async function detachTargetPartition(target: pg.ClientBase, part: TableName): Promise<boolean> {
  const { rows } = await target.query<{ parent: string | null }>(
    `SELECT (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = to_regclass($1)) AS parent`,
    [qualified(part)],
  );
  const parent = rows[0]?.parent;
  if (!parent) return false;
  await target.query(`ALTER TABLE ${parent} DETACH PARTITION ${qualified(part)}`);
  return true;
}

/**
 * Replace the target's rows of one relation by the source's current rows: delete the target's (a partition holds
 * exactly its bound's rows, so this is the bound's scope), then stream a COPY from the source into the target,
 * bounded in memory. Changes the stream delivers after this point replay over a state at least as new as theirs,
 * which converges for tables with a primary key (inserts upsert, deletes by key).
 */
export async function resyncRows(
  source: pg.ClientBase,
  target: pg.ClientBase,
  from: TableName,
  to: TableName,
  schema: TableSchema,
): Promise<number> {
  const cols = columnList(copiedColumns(schema));
  await target.query(`DELETE FROM ${qualified(to)}`);
  const reader = source.query(copyStreams.to(`COPY (SELECT ${cols} FROM ${qualified(from)}) TO STDOUT`));
  const writer = target.query(copyStreams.from(`COPY ${qualified(to)} (${cols}) FROM STDIN`));
  await pipeline(reader, writer);
  const { rows } = await target.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${qualified(to)}`);
  return Number(rows[0]?.n ?? 0);
}
