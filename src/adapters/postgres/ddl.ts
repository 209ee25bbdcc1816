/**
 * DDL text for the target, built from described tables. Pure: no client here, so the same statements serve the
 * real run and the preflight's rolled-back rehearsal. Everything is meant to run with `search_path = ''`, matching
 * how the source deparsed its expressions (every non-catalog name qualified).
 *
 * User-defined types keep their source schema and name (tables and their owned sequences are what `rename` moves):
 * the source's defaults, checks and index expressions name those types, and rewriting expression text is only
 * done where it is unambiguous (sequence references and the referenced table of a foreign key).
 */
import { tableKey, type ColumnSchema, type TableName, type TableSchema } from '../../core/model.js';
import {
  parsePgTableExtra,
  parsePgTypeRef,
  typeDefsOf,
  type PgConstraint,
  type PgIndex,
  type PgSequence,
  type PgTableExtra,
  type PgTypeDef,
} from './extra.js';
import { columnList, ident, literal, qualified } from './sql.js';

export interface TablePlan {
  table: TableSchema;
  extra: PgTableExtra;
  /** Source key, for messages. */
  key: string;
}

export interface Statement {
  /** What it does, for the error when the target refuses it. */
  label: string;
  sql: string;
}

export function planOf(tables: TableSchema[]): TablePlan[] {
  return tables.map((table) => ({ table, key: tableKey(table.source), extra: parsePgTableExtra(table.extra, tableKey(table.source)) }));
}

export function typeKey(d: { schema: string; name: string }): string {
  return `${ident(d.schema)}.${ident(d.name)}`;
}

/** Every user-defined type the tables use, each once, dependencies first. */
export function typeDefsOfTables(plans: TablePlan[]): { def: PgTypeDef; usedBy: string }[] {
  const out = new Map<string, { def: PgTypeDef; usedBy: string }>();
  for (const p of plans) {
    for (const c of p.table.columns) {
      for (const def of typeDefsOf(parsePgTypeRef(c.typeRef))) {
        if (!out.has(typeKey(def))) out.set(typeKey(def), { def, usedBy: `${p.key}.${c.name}` });
      }
    }
  }
  return [...out.values()];
}

/** CREATE statements for a type Ferry recreates itself (enum, domain, composite); none for the others. */
export function createTypeStatements(def: PgTypeDef): Statement[] {
  const name = typeKey(def);
  const label = `creating type ${name}`;
  switch (def.kind) {
    case 'enum':
      return [{ label, sql: `CREATE TYPE ${name} AS ENUM (${def.labels.map(literal).join(', ')})` }];
    case 'composite': {
      const attrs = def.attributes.map((a) => `${ident(a.name)} ${a.type}${a.collation ? ` COLLATE ${a.collation}` : ''}`);
      return [{ label, sql: `CREATE TYPE ${name} AS (${attrs.join(', ')})` }];
    }
    case 'domain': {
      let sql = `CREATE DOMAIN ${name} AS ${def.baseType}`;
      if (def.collation) sql += ` COLLATE ${def.collation}`;
      if (def.default !== null) sql += ` DEFAULT ${def.default}`;
      if (def.notNull) sql += ' NOT NULL';
      // Checks go in separately: pg_get_constraintdef may end in NOT VALID, which only ALTER DOMAIN accepts.
      const checks = def.checks.map((c) => ({
        label: `adding check ${c.name} to domain ${name}`,
        sql: `ALTER DOMAIN ${name} ADD CONSTRAINT ${ident(c.name)} ${c.definition}`,
      }));
      return [{ label, sql }, ...checks];
    }
    default:
      return [];
  }
}

function sequenceOptions(s: PgSequence): string {
  return (
    `INCREMENT BY ${s.increment} MINVALUE ${s.min} MAXVALUE ${s.max} START WITH ${s.start} ` +
    `CACHE ${s.cache} ${s.cycle ? 'CYCLE' : 'NO CYCLE'}`
  );
}

/** Sequences that exist apart from an identity column (identity sequences are made by CREATE TABLE). */
export function sequenceStatements(plans: TablePlan[]): Statement[] {
  const seen = new Set<string>();
  const out: Statement[] = [];
  for (const s of plans.flatMap((p) => p.extra.sequences)) {
    if (s.kind === 'identity' || seen.has(tableKey(s.target))) continue;
    seen.add(tableKey(s.target));
    out.push({
      label: `creating sequence ${tableKey(s.target)}`,
      sql: `CREATE SEQUENCE IF NOT EXISTS ${qualified(s.target)} AS ${s.dataType} ${sequenceOptions(s)}`,
    });
  }
  return out;
}

/** Point `nextval('src.seq'::regclass)` in a default at the target's copy of the sequence. */
export function rewriteDefault(expr: string, sequences: PgSequence[]): string {
  let out = expr;
  for (const s of sequences) {
    out = out.split(`${literal(s.regclass)}::regclass`).join(`${literal(qualified(s.target))}::regclass`);
  }
  return out;
}

function columnDef(c: ColumnSchema, extra: PgTableExtra): string {
  let sql = `${ident(c.name)} ${c.type}`;
  const collation = extra.collations.find((x) => x.column === c.name);
  if (collation) sql += ` COLLATE ${collation.collation}`;
  if (c.generated !== undefined) {
    sql += ` GENERATED ALWAYS AS (${c.generated}) ${extra.virtualColumns.includes(c.name) ? 'VIRTUAL' : 'STORED'}`;
  } else if (c.identity) {
    const seq = extra.sequences.find((s) => s.kind === 'identity' && s.column === c.name);
    const opts = seq ? ` (SEQUENCE NAME ${qualified(seq.target)} ${sequenceOptions(seq)})` : '';
    sql += ` GENERATED ${c.identity === 'always' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${opts}`;
  } else if (c.default !== undefined) {
    sql += ` DEFAULT ${rewriteDefault(c.default, extra.sequences)}`;
  }
  if (!c.nullable) sql += ' NOT NULL';
  return sql;
}

/**
 * The table with its columns and primary key, its partitions, and the ownership of its serial sequences.
 * `targets` maps source keys of the flow's tables to their target names: an INHERITS parent in the flow is
 * inherited from again (and the columns that only come from it are left to it, as pg_dump does); one outside the
 * flow is not, and the table gets all its columns.
 */
export function tableStatements(
  p: TablePlan,
  targets: Map<string, TableName> = new Map(),
  opts: { primaryKey?: boolean } = {},
): Statement[] {
  const { table: t, extra } = p;
  const shape = extra.shape;
  const parents = (shape?.inherits ?? []).map((i) => targets.get(tableKey(i)));
  const inherits = parents.length > 0 && parents.every((x) => x !== undefined) ? (parents as TableName[]) : [];
  const inherited = new Set(inherits.length > 0 ? shape?.inheritedColumns ?? [] : []);
  const parts = t.columns.filter((c) => !inherited.has(c.name)).map((c) => columnDef(c, extra));
  // Without it (a snapshot's load), primaryKeyStatement adds it at finalize.
  if (t.primaryKey.length > 0 && opts.primaryKey !== false) parts.push(primaryKeyClause(p));
  let tail = inherits.length > 0 ? ` INHERITS (${inherits.map(qualified).join(', ')})` : '';
  if (extra.partitioning) tail += ` PARTITION BY ${extra.partitioning.partitionBy}`;
  if (shape && shape.reloptions.length > 0) tail += ` WITH (${shape.reloptions.join(', ')})`;
  const out: Statement[] = [
    {
      label: `creating table ${tableKey(t.target)} (for ${p.key})`,
      sql: `CREATE ${shape?.unlogged ? 'UNLOGGED ' : ''}TABLE IF NOT EXISTS ${qualified(t.target)} (\n  ${parts.join(',\n  ')}\n)${tail}`,
    },
  ];
  const levels = new Map<string, TableName>([[tableKey(t.source), t.target]]);
  for (const part of extra.partitioning?.partitions ?? []) {
    levels.set(tableKey(part.source), part.target);
    const parent = levels.get(tableKey(part.parent)) ?? t.target;
    out.push({
      label: `creating partition ${tableKey(part.target)} of ${tableKey(parent)}`,
      sql:
        `CREATE TABLE IF NOT EXISTS ${qualified(part.target)} PARTITION OF ${qualified(parent)} ${part.bound}` +
        (part.partitionBy ? ` PARTITION BY ${part.partitionBy}` : ''),
    });
  }
  // OWNED BY makes the sequence go with the table if it is dropped, as on the source.
  for (const s of extra.sequences.filter((x) => x.kind === 'serial')) {
    out.push({
      label: `attaching sequence ${tableKey(s.target)} to ${tableKey(t.target)}.${s.column}`,
      sql: `ALTER SEQUENCE ${qualified(s.target)} OWNED BY ${qualified(t.target)}.${ident(s.column)}`,
    });
  }
  return out;
}

function primaryKeyClause(p: TablePlan): string {
  const name = p.extra.primaryKeyName ? `CONSTRAINT ${ident(p.extra.primaryKeyName)} ` : '';
  return `${name}PRIMARY KEY (${columnList(p.table.primaryKey)})`;
}

/** The primary key of a table created without it (same name as CREATE TABLE would give it); null when keyless. */
export function primaryKeyStatement(p: TablePlan): Statement | null {
  if (p.table.primaryKey.length === 0) return null;
  return {
    label: `adding the primary key of ${tableKey(p.table.target)}`,
    sql: `ALTER TABLE ${qualified(p.table.target)} ADD ${primaryKeyClause(p)}`,
  };
}

export function indexStatement(t: TableSchema, idx: PgIndex): Statement {
  return {
    label: `creating index ${idx.name} on ${tableKey(t.target)}`,
    sql: `CREATE ${idx.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS ${ident(idx.name)} ON ${qualified(t.target)} ${idx.using}`,
  };
}

/**
 * ADD CONSTRAINT for a constraint; for a foreign key, `referenced` is the referenced table's target name, which
 * replaces the source's spelling of it in the definition.
 */
export function constraintStatement(t: TableSchema, c: PgConstraint, referenced?: TableName): Statement {
  let def = c.definition;
  if (c.type === 'foreign' && c.references && referenced) {
    def = def.replace(` REFERENCES ${c.references.text}(`, ` REFERENCES ${qualified(referenced)}(`);
  }
  return {
    label: `adding ${c.type === 'foreign' ? 'foreign key' : c.type} constraint ${c.name} to ${tableKey(t.target)}`,
    sql: `ALTER TABLE ${qualified(t.target)} ADD CONSTRAINT ${ident(c.name)} ${def}`,
  };
}

/**
 * Where a foreign key's referenced table lands on the target, or null when it is not part of the flow (the key
 * is then skipped with a warning: it would reference a table that is not copied).
 */
export function referencedTarget(c: PgConstraint, plans: TablePlan[]): TableName | null {
  if (!c.references) return null;
  const key = tableKey(c.references.table);
  return plans.find((p) => p.key === key)?.table.target ?? null;
}

/**
 * Every relation name the flow creates on the target (tables, partitions, sequences, and the indexes of keys,
 * unique and exclusion constraints and plain indexes, which share the schema's namespace), with what it is for.
 * Index names are kept from the source, so two source schemas renamed into one can collide.
 */
export function createdRelations(plans: TablePlan[]): { target: TableName; what: string }[] {
  const out: { target: TableName; what: string }[] = [];
  const push = (target: TableName, what: string) => {
    // A sequence shared by several tables is listed once: it is one relation, not a collision.
    if (!out.some((o) => o.what === what && tableKey(o.target) === tableKey(target))) out.push({ target, what });
  };
  for (const p of plans) {
    push(p.table.target, `table ${p.key}`);
    for (const part of p.extra.partitioning?.partitions ?? []) push(part.target, `partition ${tableKey(part.source)}`);
    for (const s of p.extra.sequences) push(s.target, `sequence ${tableKey(s.source)}`);
    const schema = p.table.target.schema;
    if (p.extra.primaryKeyName) push({ schema, name: p.extra.primaryKeyName }, `primary key of ${p.key}`);
    for (const i of p.extra.indexes) push({ schema, name: i.name }, `index ${i.name} of ${p.key}`);
    for (const c of p.extra.constraints) {
      if (c.type === 'unique' || c.type === 'exclusion') push({ schema, name: c.name }, `constraint ${c.name} of ${p.key}`);
    }
  }
  return out;
}
