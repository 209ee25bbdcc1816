/**
 * Describe source tables from the PostgreSQL catalog: the schema half of the source adapter.
 *
 * Partitioned tables: the flow's table is the partitioned parent (its partitions are never candidates of their own).
 * `extra.partitioning` records the partition tree so the target gets the same partitioning, and the parent's
 * estimates add up its leaves. Reading the parent reads every partition, and loading into it routes each row.
 */
import type pg from 'pg';
import { FerryError } from '../../core/errors.js';
import { tableKey, type ColumnSchema, type TableName, type TableSchema } from '../../core/model.js';
import type { Selection, SequenceValue } from '../../core/ports/source.js';
import { renameTable, selectTables } from '../../core/selection.js';
import { queryJson, withEmptySearchPath } from './catalog.js';
import {
  parsePgTableExtra,
  type PgConstraint,
  type PgIndex,
  type PgPartition,
  type PgSequence,
  type PgTableExtra,
  type PgTypeRef,
} from './extra.js';
import * as Q from './introspect-queries.js';
import { applyTableControls } from './introspect-controls.js';
import { describeObjects } from './objects.js';
import { qualified } from './sql.js';

export { parsePgTableExtra, parsePgTypeRef, type PgTableExtra, type PgTypeRef, type PgTypeDef } from './extra.js';

/** Objects with a lower oid were made by initdb: built in, present on every target of a compatible version. */
const FIRST_NORMAL_OID = 16384;
/** Below this many pages (10 MB at 8 kB) an exact count(*) of a never-analyzed table is cheap. */
const COUNT_PAGES = 1280;
/** Pages a TABLESAMPLE estimate reads for a bigger never-analyzed table. */
const SAMPLE_PAGES = 1000;

type RelRow = {
  schema: string;
  name: string;
  oid: number;
  kind: string;
  replident: string;
  replidentIndex: string | null;
  partitionBy: string | null;
};
type ColumnRow = {
  rel: number;
  name: string;
  attnum: number;
  type: string;
  typeOid: number;
  notNull: boolean;
  identity: string;
  generatedKind: string;
  expr: string | null;
  collation: string | null;
};
type KeyRow = { rel: number; name: string; columns: string[] };
type IndexRow = { rel: number; name: string; unique: boolean; definition: string; table: string };
type ConstraintRow = {
  rel: number;
  name: string;
  type: string;
  definition: string;
  refSchema: string | null;
  refName: string | null;
  refText: string | null;
};
type SequenceRow = Omit<PgSequence, 'source' | 'target'> & { rel: number; schema: string; name: string };
type PartitionRow = {
  root: number;
  schema: string;
  name: string;
  parentSchema: string;
  parentName: string;
  bound: string;
  partitionBy: string | null;
};
type StorageRow = {
  root: number;
  schema: string;
  name: string;
  kind: string;
  reltuples: number;
  relpages: number;
  pages: string;
  bytes: string;
};
type TypeRow = {
  oid: number;
  schema: string;
  name: string;
  typtype: string;
  elem: number | null;
  extension: string | null;
  labels: string[] | null;
  baseOid: number | null;
  baseType: string | null;
  notNull: boolean;
  default: string | null;
  collation: string | null;
  checks: { name: string; definition: string }[] | null;
  relkind: string | null;
  attributes: { name: string; type: string; typeOid: number; collation: string | null }[] | null;
};

function groupBy<T extends { rel: number } | { root: number }>(rows: T[]): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const r of rows) {
    const k = 'rel' in r ? r.rel : r.root;
    out.set(k, [...(out.get(k) ?? []), r]);
  }
  return out;
}

export async function describeTables(client: pg.ClientBase, selection: Selection): Promise<TableSchema[]> {
  return withEmptySearchPath(client, async () => {
    const chosen = selectTables(await queryJson<TableName>(client, Q.CANDIDATES), selection);
    const rels = await queryJson<RelRow>(client, Q.TABLES, [JSON.stringify(chosen.map((c) => c.source))]);
    const relByKey = new Map(rels.map((r) => [tableKey(r), r]));
    const oids = rels.map((r) => r.oid);
    const columns = groupBy(await queryJson<ColumnRow>(client, Q.COLUMNS, [oids]));
    const pks = groupBy(await queryJson<KeyRow>(client, Q.PRIMARY_KEYS, [oids]));
    const indexes = groupBy(await queryJson<IndexRow>(client, Q.INDEXES, [oids]));
    const constraints = groupBy(await queryJson<ConstraintRow>(client, Q.CONSTRAINTS, [oids]));
    const sequences = groupBy(await queryJson<SequenceRow>(client, Q.SEQUENCES, [oids]));
    const partitioned = rels.filter((r) => r.kind === 'p').map((r) => r.oid);
    const partitions = groupBy(await queryJson<PartitionRow>(client, Q.PARTITIONS, [partitioned]));
    const storage = groupBy(await queryJson<StorageRow>(client, Q.STORAGE, [oids]));
    const typeRef = await resolveTypes(client, [...columns.values()].flat().map((c) => c.typeOid));

    const out: TableSchema[] = [];
    for (const { source, target } of chosen) {
      const rel = relByKey.get(tableKey(source));
      if (!rel) throw new FerryError(`table ${tableKey(source)} disappeared from the source while it was being described`);
      const cols = columns.get(rel.oid) ?? [];
      const pk = pks.get(rel.oid)?.[0];
      const extra: PgTableExtra = {
        version: 1,
        primaryKeyName: pk?.name ?? null,
        indexes: (indexes.get(rel.oid) ?? []).map(toIndex),
        constraints: (constraints.get(rel.oid) ?? []).map(toConstraint),
        sequences: (sequences.get(rel.oid) ?? []).map(({ rel: _rel, schema, name, ...s }) => ({
          ...s,
          source: { schema, name },
          // Owned sequences move with their table's schema (renamed or not); a shared one follows the rename rules.
          target: s.kind === 'shared' ? renameTable({ schema, name }, selection.rename) : { schema: target.schema, name },
        })),
        replicaIdentity: {
          mode: ({ d: 'default', n: 'nothing', f: 'full', i: 'index' } as const)[rel.replident as 'd'] ?? 'default',
          index: rel.replidentIndex,
        },
        attnums: { relid: rel.oid, byName: Object.fromEntries(cols.map((c) => [c.name, c.attnum])) },
        collations: cols.filter((c) => c.collation).map((c) => ({ column: c.name, collation: c.collation! })),
        virtualColumns: cols.filter((c) => c.generatedKind === 'v').map((c) => c.name),
        partitioning: rel.partitionBy
          ? {
              partitionBy: rel.partitionBy,
              partitions: (partitions.get(rel.oid) ?? []).map((p) => toPartition(p, source, target, selection)),
            }
          : null,
      };
      out.push({
        source,
        target,
        columns: cols.map((c) => toColumn(c, typeRef)),
        primaryKey: pk?.columns ?? [],
        ...(await estimate(client, storage.get(rel.oid) ?? [])),
        extra,
      });
    }
    // Column and row controls (config `tables`) before the objects: those then see only the kept columns.
    await applyTableControls(client, out, selection);
    if (out.length > 0) {
      const { database, shapes } = await describeObjects(
        client,
        out,
        new Map(rels.map((r) => [tableKey(r), r.oid])),
        selection.objects ?? { owner: 'keep', roles: 'create' },
        (more) => resolveTypes(client, more),
      );
      for (const t of out) {
        const shape = shapes.get(tableKey(t.source));
        if (shape) (t.extra as PgTableExtra).shape = shape;
      }
      (out[0]!.extra as PgTableExtra).database = database;
    }
    return out;
  });
}

function toColumn(c: ColumnRow, typeRef: (oid: number) => PgTypeRef | null): ColumnSchema {
  const col: ColumnSchema = { name: c.name, type: c.type, nullable: !c.notNull };
  const ref = typeRef(c.typeOid);
  if (ref) col.typeRef = ref;
  if (c.identity === 'a') col.identity = 'always';
  if (c.identity === 'd') col.identity = 'by default';
  if (c.expr !== null) {
    if (c.generatedKind === 's' || c.generatedKind === 'v') col.generated = c.expr;
    else col.default = c.expr;
  }
  return col;
}

function toIndex(r: IndexRow): PgIndex {
  // pg_get_indexdef prints `... ON [ONLY] <table> USING ...`; keep what follows the table so it can be replayed on
  // another name. ONLY (an index on a partitioned parent alone) is dropped: the target builds it on every partition.
  for (const on of [` ON ONLY ${r.table} `, ` ON ${r.table} `]) {
    const at = r.definition.indexOf(on);
    if (at >= 0) return { name: r.name, definition: r.definition, using: r.definition.slice(at + on.length), unique: r.unique };
  }
  throw new FerryError(`cannot parse the definition of index ${r.name}: ${r.definition}`);
}

function toConstraint(r: ConstraintRow): PgConstraint {
  const type = ({ u: 'unique', c: 'check', x: 'exclusion', f: 'foreign' } as const)[r.type as 'u'];
  return {
    name: r.name,
    type,
    definition: r.definition,
    references:
      r.refSchema !== null && r.refName !== null && r.refText !== null
        ? { table: { schema: r.refSchema, name: r.refName }, text: r.refText }
        : null,
  };
}

function toPartition(p: PartitionRow, root: TableName, rootTarget: TableName, sel: Selection): PgPartition {
  const source = { schema: p.schema, name: p.name };
  // A partition in its parent's schema follows the parent there; one elsewhere follows the rename rules.
  const target = p.schema === root.schema ? { schema: rootTarget.schema, name: p.name } : renameTable(source, sel.rename);
  return { source, target, parent: { schema: p.parentSchema, name: p.parentName }, bound: p.bound, partitionBy: p.partitionBy };
}

/**
 * Rows and bytes of a table's leaves. Like the planner: reltuples scaled to the current size. A table never
 * analyzed (reltuples < 0) is counted when small and sampled when not.
 */
async function estimate(client: pg.ClientBase, leaves: StorageRow[]): Promise<{ estimatedRows: number; estimatedBytes: number }> {
  let rows = 0;
  let bytes = 0;
  for (const l of leaves) {
    bytes += Number(l.bytes);
    if (l.kind !== 'r') continue; // foreign partitions: nothing local to measure
    const pages = Number(l.pages);
    if (l.reltuples >= 0) {
      rows += l.relpages > 0 ? Math.round((l.reltuples / l.relpages) * pages) : l.reltuples;
    } else if (pages <= COUNT_PAGES) {
      const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${qualified(l)}`);
      rows += Number(r.rows[0]?.n ?? 0);
    } else {
      const pct = Math.min(100, (SAMPLE_PAGES * 100) / pages);
      const r = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${qualified(l)} TABLESAMPLE SYSTEM (${pct.toFixed(6)}) REPEATABLE (0)`,
      );
      rows += Math.round((Number(r.rows[0]?.n ?? 0) * 100) / pct);
    }
  }
  return { estimatedRows: rows, estimatedBytes: bytes };
}

/** Load every user-defined type the columns use, and the types those depend on, then build references. */
async function resolveTypes(client: pg.ClientBase, oids: number[]): Promise<(oid: number) => PgTypeRef | null> {
  const isUser = (oid: number | null): oid is number => oid !== null && oid >= FIRST_NORMAL_OID;
  const rows = new Map<number, TypeRow>();
  let pending = [...new Set(oids.filter(isUser))];
  while (pending.length > 0) {
    const got = await queryJson<TypeRow>(client, Q.TYPES, [pending]);
    for (const r of got) rows.set(r.oid, r);
    const next = got.flatMap((r) => [r.elem, r.baseOid, ...(r.attributes ?? []).map((a) => a.typeOid)]);
    pending = [...new Set(next.filter(isUser).filter((o) => !rows.has(o)))];
  }
  const refFor = (oid: number, depth = 0): PgTypeRef | null => {
    const t = rows.get(oid);
    if (!t || !isUser(oid) || depth > 32) return null;
    if (t.elem !== null) {
      const inner = refFor(t.elem, depth + 1);
      return inner ? { array: true, def: inner.def } : null;
    }
    const at = { schema: t.schema, name: t.name };
    if (t.extension) return { array: false, def: { kind: 'extension', ...at, extension: t.extension } };
    if (t.typtype === 'e') return { array: false, def: { kind: 'enum', ...at, labels: t.labels ?? [] } };
    if (t.typtype === 'd') {
      return {
        array: false,
        def: {
          kind: 'domain',
          ...at,
          baseType: t.baseType ?? 'unknown',
          base: t.baseOid === null ? null : refFor(t.baseOid, depth + 1),
          notNull: t.notNull,
          default: t.default,
          collation: t.collation,
          checks: t.checks ?? [],
        },
      };
    }
    if (t.typtype === 'c' && t.relkind === 'c') {
      const attributes = (t.attributes ?? []).map((a) => ({
        name: a.name,
        type: a.type,
        typeRef: refFor(a.typeOid, depth + 1),
        collation: a.collation,
      }));
      return { array: false, def: { kind: 'composite', ...at, attributes } };
    }
    return { array: false, def: { kind: 'other', ...at, typtype: t.typtype } };
  };
  return (oid) => refFor(oid);
}

/** Current values of the sequences the tables' columns use, read from the source at finalize or cutover time. */
export async function readSequences(client: pg.ClientBase, tables: TableSchema[]): Promise<SequenceValue[]> {
  const wanted = tables.flatMap((t) =>
    parsePgTableExtra(t.extra, tableKey(t.source)).sequences.map((s) => ({ table: tableKey(t.source), s })),
  );
  if (wanted.length === 0) return [];
  // One round trip for all of them; text casts keep int8 exact whatever the client's type parsers do.
  const sql = wanted
    .map(
      ({ s }, i) =>
        `SELECT ${i} AS i, last_value::text AS v, is_called::text AS c FROM ${qualified(s.source)}`,
    )
    .join('\nUNION ALL\n');
  const res = await client.query<{ i: number | string; v: string; c: string }>(sql);
  return res.rows
    .map((r) => ({ r, w: wanted[Number(r.i)]! }))
    .sort((a, b) => Number(a.r.i) - Number(b.r.i))
    .map(({ r, w }) => ({ table: w.table, column: w.s.column, lastValue: r.v, isCalled: r.c === 'true' }));
}
