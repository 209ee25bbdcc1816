/**
 * The PostgreSQL-specific facts a `TableSchema` carries in `extra` (and a column in `typeRef`). They travel through
 * the state store as JSON, so everything is a plain `type` alias of JSON values (null, never undefined) and int8
 * quantities are strings. A flow planned by one Ferry may be finalized by another: `version` lets a newer one refuse
 * what it cannot read instead of misreading it.
 */
import { FerryError } from '../../core/errors.js';
import type { Json } from '../../core/model.js';
import type { PgDatabaseObjects, PgTableShape } from './objects-model.js';

/** A `TableName` as a JSON-compatible type alias (interfaces are not assignable to `Json`). */
export type PgName = { schema: string; name: string };

export type PgIndex = {
  name: string;
  /** `pg_get_indexdef` as read on the source, for logs and comparisons. */
  definition: string;
  /** The part after `ON table`: `USING btree (a, b) INCLUDE (c) WHERE (...)`, to recreate it on a renamed table. */
  using: string;
  unique: boolean;
};

export type PgConstraint = {
  name: string;
  type: 'unique' | 'check' | 'exclusion' | 'foreign';
  /** `pg_get_constraintdef`, e.g. `FOREIGN KEY (a) REFERENCES public.t(id) ON DELETE CASCADE`. */
  definition: string;
  /** Foreign keys: the referenced source table and how `definition` spells it (to map it through renames). */
  references: { table: PgName; text: string } | null;
};

export type PgSequence = {
  column: string;
  /** `serial`: OWNED BY the column; `identity`: the column's identity; `shared`: only used by its default. */
  kind: 'serial' | 'identity' | 'shared';
  source: PgName;
  target: PgName;
  /** How the source's default expression spells it (`public.t_id_seq`), to rewrite `nextval('...'::regclass)`. */
  regclass: string;
  dataType: string;
  increment: string;
  min: string;
  max: string;
  start: string;
  cache: string;
  cycle: boolean;
};

export type PgPartition = {
  source: PgName;
  target: PgName;
  /** Source name of the partitioned table it belongs to (the flow's table, or an intermediate level). */
  parent: PgName;
  /** `FOR VALUES ...` or `DEFAULT`, from `pg_get_expr(relpartbound)`. */
  bound: string;
  /** `RANGE (at)` when this partition is itself partitioned. */
  partitionBy: string | null;
};

export type PgTableExtra = {
  version: 1;
  primaryKeyName: string | null;
  indexes: PgIndex[];
  constraints: PgConstraint[];
  sequences: PgSequence[];
  replicaIdentity: { mode: 'default' | 'nothing' | 'full' | 'index'; index: string | null };
  /**
   * The relation's OID and its columns' attribute numbers when the plan described it (absent in older plans). The
   * stream hooks learn a column's attnum from these when the column was renamed before they first read the catalog
   * (between the snapshot and the streamer's start), so that rename is recognised instead of pausing the table.
   */
  attnums?: { relid: number; byName: Record<string, number> };
  /** Columns whose collation differs from their type's default: `{ column, collation: 'pg_catalog."C"' }`. */
  collations: { column: string; collation: string }[];
  /** PostgreSQL 18 virtual generated columns (the others in `ColumnSchema.generated` are stored). */
  virtualColumns: string[];
  /** For a partitioned table: its key and every partition below it, parents before children. */
  partitioning: { partitionBy: string; partitions: PgPartition[] } | null;
  /** UNLOGGED, storage options, INHERITS (absent in plans made before Ferry carried them). */
  shape?: PgTableShape;
  /** On the plan's first table only: the database objects around the tables (see objects-model.ts). */
  database?: PgDatabaseObjects;
};

/** A user-defined type a column uses, with what is needed to recreate it on the target. */
export type PgTypeRef = { array: boolean; def: PgTypeDef };

export type PgTypeDef =
  | { kind: 'enum'; schema: string; name: string; labels: string[] }
  | {
      kind: 'domain';
      schema: string;
      name: string;
      /** format_type of the base type; `base` is set when that type is user-defined too. */
      baseType: string;
      base: PgTypeRef | null;
      notNull: boolean;
      default: string | null;
      collation: string | null;
      checks: { name: string; definition: string }[];
    }
  | {
      kind: 'composite';
      schema: string;
      name: string;
      attributes: { name: string; type: string; typeRef: PgTypeRef | null; collation: string | null }[];
    }
  /** Belongs to an extension: the target needs `CREATE EXTENSION`, Ferry never recreates it piecemeal. */
  | { kind: 'extension'; schema: string; name: string; extension: string }
  /** A base, range or other type Ferry cannot recreate: it must already exist on the target. */
  | { kind: 'other'; schema: string; name: string; typtype: string };

function isObject(v: Json | undefined): v is { [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Read `TableSchema.extra` back. Checks the shape the finalizer relies on, not every leaf: the value was written by
 * `describeTables`, and a stale or foreign one is what this guards against.
 */
export function parsePgTableExtra(extra: Json, table = 'table'): PgTableExtra {
  if (!isObject(extra) || extra.version !== 1) {
    throw new FerryError(
      `the plan's schema facts for ${table} are not PostgreSQL facts this Ferry can read (version ${
        isObject(extra) ? JSON.stringify(extra.version) : 'missing'
      })`,
      'plan the flow again with this version of Ferry',
    );
  }
  for (const key of ['indexes', 'constraints', 'sequences', 'collations', 'virtualColumns'] as const) {
    if (!Array.isArray(extra[key])) throw new FerryError(`the plan's schema facts for ${table} lack \`${key}\``);
  }
  if (!isObject(extra.replicaIdentity)) throw new FerryError(`the plan's schema facts for ${table} lack \`replicaIdentity\``);
  return extra as unknown as PgTableExtra;
}

export function parsePgTypeRef(typeRef: Json | undefined): PgTypeRef | null {
  if (typeRef === undefined || typeRef === null) return null;
  if (!isObject(typeRef) || !isObject(typeRef.def) || typeof typeRef.def.kind !== 'string') {
    throw new FerryError(`unreadable column type facts: ${JSON.stringify(typeRef).slice(0, 200)}`);
  }
  return typeRef as unknown as PgTypeRef;
}

/** The user-defined types behind a type reference, dependencies first (a domain's base before the domain). */
export function typeDefsOf(ref: PgTypeRef | null, out: PgTypeDef[] = []): PgTypeDef[] {
  if (!ref) return out;
  const def = ref.def;
  if (def.kind === 'domain') typeDefsOf(def.base, out);
  if (def.kind === 'composite') for (const a of def.attributes) typeDefsOf(a.typeRef, out);
  if (!out.some((d) => d.schema === def.schema && d.name === def.name)) out.push(def);
  return out;
}
