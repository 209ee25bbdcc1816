/**
 * Executing DDL on the target: the create step shared by `createTables` and the preflight's rehearsal, the
 * comparison of types that already exist, and the ordered statements of the finalize step.
 */
import type pg from 'pg';
import { PreflightError, errorMessage } from '../../core/errors.js';
import { tableKey, type TableName } from '../../core/model.js';
import { queryJson } from './catalog.js';
import {
  constraintStatement,
  createTypeStatements,
  indexStatement,
  primaryKeyStatement,
  referencedTarget,
  sequenceStatements,
  tableStatements,
  typeDefsOfTables,
  typeKey,
  type Statement,
  type TablePlan,
} from './ddl.js';
import type { PgTypeDef } from './extra.js';
import { applyPre, databaseOf } from './objects-target.js';
import { ident } from './sql.js';

/** Run one statement; a refusal names what was being done, the table it was for, and the statement. */
export async function run(client: pg.ClientBase, st: Statement): Promise<void> {
  try {
    await client.query(st.sql);
  } catch (err) {
    const owner = /\bOWNER TO\b/.test(st.sql)
      ? '; to keep the source\'s owners the target user must be a superuser or a member of each owning role (GRANT <owner> TO <target user>), or set `schema.owner: target-user` to make the target user the owner'
      : '';
    throw new PreflightError(`the target refused ${st.label}: ${errorMessage(err)}`, `the statement was: ${st.sql}${owner}`);
  }
}

type ExistingType = {
  schema: string;
  name: string;
  typtype: string;
  labels: string[] | null;
  baseType: string | null;
  attributes: { name: string; type: string }[] | null;
};

/** Types of these names on the target, described as the source describes its own (run with search_path ''). */
export async function existingTypes(client: pg.ClientBase, defs: PgTypeDef[]): Promise<Map<string, ExistingType>> {
  if (defs.length === 0) return new Map();
  const rows = await queryJson<ExistingType>(
    client,
    `SELECT coalesce(json_agg(json_build_object('schema', n.nspname, 'name', t.typname, 'typtype', t.typtype::text,
       'labels', (SELECT json_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),
       'baseType', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
       'attributes', (SELECT json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                              ORDER BY a.attnum)
                      FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0
                        AND NOT a.attisdropped))), '[]')::text AS j
     FROM jsonb_array_elements($1::jsonb) w
     JOIN pg_namespace n ON n.nspname = w->>'schema'
     JOIN pg_type t ON t.typnamespace = n.oid AND t.typname = w->>'name'`,
    [JSON.stringify(defs.map((d) => ({ schema: d.schema, name: d.name })))],
  );
  return new Map(rows.map((r) => [typeKey(r), r]));
}

/** Why an existing target type cannot stand in for the source's, or null when it can. */
export function typeMismatch(def: PgTypeDef, ex: ExistingType): string | null {
  const name = `${def.schema}.${def.name}`;
  switch (def.kind) {
    case 'enum':
      if (ex.typtype !== 'e') return `${name} exists on the target but is not an enum`;
      if (JSON.stringify(ex.labels ?? []) !== JSON.stringify(def.labels)) {
        return `enum ${name} exists on the target with labels (${(ex.labels ?? []).join(', ')}), the source has (${def.labels.join(', ')})`;
      }
      return null;
    case 'domain':
      if (ex.typtype !== 'd') return `${name} exists on the target but is not a domain`;
      if (ex.baseType !== def.baseType) {
        return `domain ${name} exists on the target over ${ex.baseType}, the source's is over ${def.baseType}`;
      }
      return null;
    case 'composite': {
      if (ex.typtype !== 'c') return `${name} exists on the target but is not a composite type`;
      const want = def.attributes.map((a) => `${a.name} ${a.type}`).join(', ');
      const have = (ex.attributes ?? []).map((a) => `${a.name} ${a.type}`).join(', ');
      return want === have ? null : `composite type ${name} exists on the target as (${have}), the source has (${want})`;
    }
    default:
      return null; // extension and other types: that one exists is all Ferry can ask
  }
}

/** An identifier for a message the user may paste: quoted only when it must be. */
function readable(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : ident(name);
}

/** Why a type Ferry does not create is missing, and what to do; null if Ferry creates it. */
export function missingTypeProblem(def: PgTypeDef, usedBy: string): { message: string; hint: string } | null {
  const table = usedBy.slice(0, usedBy.lastIndexOf('.'));
  const name = `${def.schema}.${def.name}`;
  if (def.kind === 'extension') {
    return {
      message: `column ${usedBy} has type ${name} from extension ${def.extension}, which the target database lacks`,
      hint: `run \`CREATE EXTENSION ${readable(def.extension)} SCHEMA ${readable(def.schema)}\` on the target, or exclude ${table}`,
    };
  }
  if (def.kind === 'other') {
    return {
      message: `column ${usedBy} has type ${name}, which the target database lacks and Ferry cannot create`,
      hint: `create the type on the target first, or exclude ${table}`,
    };
  }
  return null;
}

/**
 * Schemas, types, sequences, tables, partitions. Runs inside the caller's transaction with search_path ''.
 * Existing objects are left alone (after checking that types match), so running it again is a no-op.
 *
 * `primaryKeys: false` (a snapshot's load) creates the tables without their primary keys: maintaining a unique
 * btree on every loaded row costs the target's COPY backend, which is the snapshot's bottleneck, while one build
 * after the load is a single sorted pass. finalizeSteps adds them first, before anything (CDC) needs them.
 */
export async function applyCreate(client: pg.ClientBase, plans: TablePlan[], opts: { primaryKeys?: boolean } = {}): Promise<void> {
  const db = databaseOf(plans);
  const defs = typeDefsOfTables(plans);
  // Types of the touched schemas that no column uses are created too (an unfiltered migration leaves nothing out).
  for (const def of db?.types ?? []) if (!defs.some((d) => typeKey(d.def) === typeKey(def))) defs.push({ def, usedBy: `schema ${def.schema}` });
  const schemas = new Set<string>([...defs.map((d) => d.def.schema), ...(db?.schemas ?? [])]);
  for (const p of plans) {
    schemas.add(p.table.target.schema);
    for (const part of p.extra.partitioning?.partitions ?? []) schemas.add(part.target.schema);
    for (const s of p.extra.sequences) schemas.add(s.target.schema);
  }
  // Only the missing ones: CREATE SCHEMA IF NOT EXISTS still demands CREATE on the database.
  const missing = await queryJson<string>(
    client,
    `SELECT coalesce(json_agg(s ORDER BY s), '[]')::text AS j FROM jsonb_array_elements_text($1::jsonb) s
     WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s)`,
    [JSON.stringify([...schemas])],
  );
  for (const s of missing) await run(client, { label: `creating schema ${s}`, sql: `CREATE SCHEMA IF NOT EXISTS ${ident(s)}` });
  await applyPre(client, plans, (st) => run(client, st));

  const existing = await existingTypes(client, defs.map((d) => d.def));
  for (const { def, usedBy } of defs) {
    const ex = existing.get(typeKey(def));
    if (ex) {
      const why = typeMismatch(def, ex);
      if (why) throw new PreflightError(why, `make the target's type match, or drop it so Ferry creates it (used by ${usedBy})`);
      continue;
    }
    const problem = missingTypeProblem(def, usedBy);
    if (problem) throw new PreflightError(problem.message, problem.hint);
    for (const st of createTypeStatements(def)) await run(client, st);
  }
  for (const st of sequenceStatements(plans)) await run(client, st);
  const targets = new Map(plans.map((p) => [p.key, p.table.target]));
  for (const p of inheritanceOrder(plans)) for (const st of tableStatements(p, targets, { primaryKey: opts.primaryKeys })) await run(client, st);
}

/** Plans with every INHERITS parent of the flow before its children (the flow's order otherwise). */
export function inheritanceOrder(plans: TablePlan[]): TablePlan[] {
  const byKey = new Map(plans.map((p) => [p.key, p]));
  const out: TablePlan[] = [];
  const seen = new Set<string>();
  const visit = (p: TablePlan, depth: number) => {
    if (seen.has(p.key) || depth > plans.length) return;
    for (const parent of p.extra.shape?.inherits ?? []) {
      const pp = byKey.get(tableKey(parent));
      if (pp) visit(pp, depth + 1);
    }
    seen.add(p.key);
    out.push(p);
  };
  for (const p of plans) visit(p, 0);
  return out;
}

export interface FinalizeStep {
  st: Statement;
  table: TableName;
  /** Constraints are checked by name first (ADD CONSTRAINT has no IF NOT EXISTS). */
  constraint: string | null;
  /** Indexes: its name, to tell "already built" from "name taken by another table's index". */
  index: string | null;
  /** Foreign keys: the referenced target table. */
  references: TableName | null;
  /** The primary key: skipped when the table has one already (created by an older Ferry, or by the user). */
  primaryKey?: boolean;
}

/**
 * Primary keys (deferred from createTables; CDC's upserts and the foreign keys need them), then secondary indexes,
 * then unique/check/exclusion constraints, then foreign keys (which may need the unique indexes of the referenced
 * table). A foreign key to a table outside the flow is skipped with a warning.
 */
export function finalizeSteps(plans: TablePlan[], all: TablePlan[] = plans): { steps: FinalizeStep[]; warnings: string[] } {
  const keys: FinalizeStep[] = [];
  const indexes: FinalizeStep[] = [];
  const constraints: FinalizeStep[] = [];
  const foreign: FinalizeStep[] = [];
  const warnings: string[] = [];
  for (const p of plans) {
    const t = p.table;
    const pk = primaryKeyStatement(p);
    if (pk) keys.push({ st: pk, table: t.target, constraint: null, index: null, references: null, primaryKey: true });
    for (const idx of p.extra.indexes) indexes.push({ st: indexStatement(t, idx), table: t.target, constraint: null, index: idx.name, references: null });
    for (const c of p.extra.constraints) {
      if (c.type !== 'foreign') {
        constraints.push({ st: constraintStatement(t, c), table: t.target, constraint: c.name, index: null, references: null });
        continue;
      }
      const ref = referencedTarget(c, all);
      if (!ref) {
        warnings.push(
          `foreign key ${c.name} of ${p.key} references ${c.references ? tableKey(c.references.table) : '?'}, ` +
            'which is not part of this flow: not created on the target',
        );
        continue;
      }
      foreign.push({ st: constraintStatement(t, c, ref), table: t.target, constraint: c.name, index: null, references: ref });
    }
  }
  return { steps: [...keys, ...indexes, ...constraints, ...foreign], warnings };
}
