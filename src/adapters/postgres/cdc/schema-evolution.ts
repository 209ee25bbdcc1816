/**
 * PostgreSQL side of column evolution while streaming: the source catalog read by OID (what a Relation message
 * names), and the target DDL that replays a decided step. The decisions themselves are core/cdc/evolve-columns.ts.
 */
import type pg from 'pg';
import type { CatalogColumn, ColumnStep } from '../../../core/cdc/evolve-columns.js';
import type { TableName } from '../../../core/model.js';
import { queryJson, withEmptySearchPath } from '../catalog.js';
import { ident, qualified } from '../sql.js';

/** What the source catalog says now about a relation, by OID. Undefined once the relation is gone. */
export interface SourceRelation {
  oid: number;
  schema: string;
  name: string;
  /** pg_class.relkind: r (table), p (partitioned). */
  kind: string;
  unlogged: boolean;
  /** The topmost partitioned ancestor of a partition (the relation itself when it is not a partition). */
  root: TableName;
  /** Ancestors from the root down to the direct parent (empty when not a partition). */
  ancestors: { schema: string; name: string; bound: string | null; partitionBy: string | null }[];
  bound: string | null;
  partitionBy: string | null;
}

/** Run with an empty search_path, so that types and defaults come back schema-qualified (as introspect.ts does). */
export async function readRelation(client: pg.ClientBase, oid: number | string): Promise<SourceRelation | undefined> {
  return withEmptySearchPath(client, async () => {
    const [rel] = await queryJson<SourceRelation>(
      client,
      `SELECT json_agg(json_build_object(
         'oid', c.oid::int8, 'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::text,
         'unlogged', c.relpersistence = 'u',
         'root', (SELECT json_build_object('schema', rn.nspname, 'name', rc.relname)
                  FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                  WHERE rc.oid = coalesce(pg_partition_root(c.oid), c.oid)),
         'ancestors', (SELECT coalesce(json_agg(json_build_object('schema', an.nspname, 'name', ac.relname,
                           'bound', pg_get_expr(ac.relpartbound, ac.oid),
                           'partitionBy', CASE WHEN ac.relkind = 'p' THEN pg_get_partkeydef(ac.oid) END) ORDER BY a.depth DESC), '[]')
                       FROM (SELECT relid, row_number() OVER () AS depth FROM pg_partition_ancestors(c.oid)) a
                       JOIN pg_class ac ON ac.oid = a.relid JOIN pg_namespace an ON an.oid = ac.relnamespace
                       WHERE a.relid <> c.oid),
         'bound', pg_get_expr(c.relpartbound, c.oid),
         'partitionBy', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END))::text AS j
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1::oid`,
      [String(oid)],
    );
    return rel ?? undefined;
  });
}

interface CatalogRow {
  attnum: number;
  name: string;
  type: string;
  typeOid: number;
  typeMod: number;
  notNull: boolean;
  identity: string;
  generatedKind: string;
  expr: string | null;
}

/** The live columns of a relation now, in attnum order, described as introspect.ts describes them. */
export async function readCatalogColumns(client: pg.ClientBase, oid: number | string): Promise<CatalogColumn[]> {
  const rows = await withEmptySearchPath(client, () =>
    queryJson<CatalogRow>(
      client,
      `SELECT coalesce(json_agg(json_build_object('attnum', a.attnum, 'name', a.attname,
         'type', format_type(a.atttypid, a.atttypmod), 'typeOid', a.atttypid::int8, 'typeMod', a.atttypmod,
         'notNull', a.attnotnull, 'identity', a.attidentity::text, 'generatedKind', a.attgenerated::text,
         'expr', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')::text AS j
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped`,
      [String(oid)],
    ),
  );
  return rows.map((r) => {
    const col: CatalogColumn = { attnum: r.attnum, name: r.name, type: r.type, typeOid: Number(r.typeOid), typeMod: r.typeMod, nullable: !r.notNull };
    if (r.identity === 'a') col.identity = 'always';
    if (r.identity === 'd') col.identity = 'by default';
    if (r.expr !== null) {
      if (r.generatedKind === 's' || r.generatedKind === 'v') col.generated = r.expr;
      else col.default = r.expr;
    }
    return col;
  });
}

/** The OID of a table by name (to start tracking the flow's tables), or undefined when it is gone. */
export async function oidOf(client: pg.ClientBase, table: TableName): Promise<number | undefined> {
  const { rows } = await client.query<{ oid: string | null }>(`SELECT to_regclass($1)::oid::int8::text AS oid`, [qualified(table)]);
  return rows[0]?.oid ? Number(rows[0].oid) : undefined;
}

/**
 * The target DDL for one step. An added column gets the source's type, default and NOT NULL: its default fills the
 * target's existing rows as the source's filled its own (the same value for a constant default).
 */
export function columnStepSql(target: TableName, step: ColumnStep): string {
  const t = qualified(target);
  if (step.op === 'rename') return `ALTER TABLE ${t} RENAME COLUMN ${ident(step.from)} TO ${ident(step.to)}`;
  if (step.op === 'drop') return `ALTER TABLE ${t} DROP COLUMN IF EXISTS ${ident(step.column)}`;
  const c = step.column;
  const def = c.default !== undefined ? ` DEFAULT ${c.default}` : '';
  return `ALTER TABLE ${t} ADD COLUMN IF NOT EXISTS ${ident(c.name)} ${c.type}${def}${c.nullable ? '' : ' NOT NULL'}`;
}

/**
 * Replay steps on the target inside the open apply transaction, under a savepoint: if the target refuses one
 * (a user-defined type it lacks, a dependent view), nothing of them stays and the database's error is returned,
 * for the caller to pause the table with.
 */
export async function applyColumnSteps(client: pg.ClientBase, target: TableName, steps: ColumnStep[]): Promise<string | undefined> {
  await client.query('SAVEPOINT ferry_evolve');
  try {
    for (const s of steps) await client.query(columnStepSql(target, s));
    await client.query('RELEASE SAVEPOINT ferry_evolve');
    return undefined;
  } catch (err) {
    await client.query('ROLLBACK TO SAVEPOINT ferry_evolve');
    await client.query('RELEASE SAVEPOINT ferry_evolve');
    return `the target refused ${steps.map((s) => columnStepSql(target, s)).join('; ')}: ${(err as Error).message}`;
  }
}

/** Steps the target table already reflects (a sibling partition's message applied them to the shared root). */
export async function targetColumns(client: pg.ClientBase, target: TableName): Promise<Set<string>> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped`,
    [qualified(target)],
  );
  return new Set(rows.map((r) => r.name));
}

export function pendingSteps(steps: ColumnStep[], has: ReadonlySet<string>): ColumnStep[] {
  return steps.filter((s) =>
    s.op === 'add' ? !has.has(s.column.name) : s.op === 'drop' ? has.has(s.column) : has.has(s.from) && !has.has(s.to),
  );
}
