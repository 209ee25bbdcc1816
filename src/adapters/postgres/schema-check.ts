/**
 * Preflight of the target, before anything is written: every column type must exist there (or be one Ferry
 * creates), tables that already exist must have the same columns and, unless told otherwise, no rows. Then the whole
 * create step, with the indexes and constraints of the tables it would create, is rehearsed in a transaction that is
 * rolled back, so a missing function in a default or an operator class in an index surfaces now, not hours later.
 * Only when all of that passes are tables truncated (with `truncate`).
 */
import type pg from 'pg';
import { PreflightError, errorMessage } from '../../core/errors.js';
import { tableKey, type TableSchema } from '../../core/model.js';
import { queryJson, withEmptySearchPath } from './catalog.js';
import { createdRelations, planOf, typeDefsOfTables, typeKey, type TablePlan } from './ddl.js';
import { parsePgTypeRef, typeDefsOf } from './extra.js';
import { qualified } from './sql.js';
import { databaseOf, objectProblems, postStatements } from './objects-target.js';
import { BEGIN_AS_REPLICA } from './replica-role.js';
import { targetPrivilegeProblems } from './target-privileges.js';
import { applyCreate, existingTypes, finalizeSteps, missingTypeProblem, run, typeMismatch } from './target-ddl.js';

export interface CheckOptions {
  /** Empty target tables that already hold rows (after every check passed). */
  truncate: boolean;
  /** The rows on the target are this flow's own: neither refuse nor truncate them. */
  resuming: boolean;
}

type Problem = { message: string; hint: string };

type ExistingTable = { key: string; kind: string; columns: { name: string; type: string }[] };

export async function checkTargetTables(
  client: pg.ClientBase,
  tables: TableSchema[],
  opts: CheckOptions,
): Promise<void> {
  const plans = planOf(tables);
  return withEmptySearchPath(client, async () => {
    // Privileges first: without them nothing else can be created, and the rehearsal below would fail on them.
    const privileges = await targetPrivilegeProblems(client, tables, { truncate: opts.truncate });
    if (privileges.length > 0) throw combine(privileges);
    const problems: Problem[] = [
      ...nameCollisions(plans),
      ...(await typeProblems(client, plans)),
      ...(await objectProblems(client, plans)),
    ];
    const existing = await existingTables(client, plans);
    const nonEmpty: TablePlan[] = [];
    for (const p of plans) {
      const ex = existing.get(qualified(p.table.target));
      if (!ex) continue;
      const where = `target table ${tableKey(p.table.target)}${p.key === tableKey(p.table.target) ? '' : ` (for ${p.key})`}`;
      if (ex.kind !== 'r' && ex.kind !== 'p') {
        problems.push({ message: `${where} exists and is not a table`, hint: 'drop it, or rename the table in `rename`' });
        continue;
      }
      const diff = columnDifferences(p, ex);
      if (diff.length > 0) {
        problems.push({ message: `${where} exists with different columns: ${diff.join('; ')}`, hint: 'drop it or make its columns match the source' });
        continue;
      }
      const r = await client.query<{ e: string }>(`SELECT (EXISTS (SELECT 1 FROM ${qualified(p.table.target)}))::text AS e`);
      if (r.rows[0]?.e === 'true' && !opts.resuming) {
        if (opts.truncate) nonEmpty.push(p);
        else {
          problems.push({
            message: `${where} already has rows`,
            hint: 'empty it, set `onExistingRows: truncate` on the target, or exclude the table',
          });
        }
      }
    }
    if (problems.length > 0) throw combine(problems);

    await rehearse(client, plans, new Set(existing.keys()));

    if (nonEmpty.length > 0) {
      try {
        // As a replica: no TRUNCATE trigger of the target fires (see replica-role.ts).
        await client.query(`${BEGIN_AS_REPLICA}; TRUNCATE ${nonEmpty.map((p) => qualified(p.table.target)).join(', ')}; COMMIT`);
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw new PreflightError(
          `cannot truncate ${nonEmpty.map((p) => tableKey(p.table.target)).join(', ')} on the target: ${errorMessage(err)}`,
          'a table outside the flow probably references them with a foreign key: drop or empty it first',
        );
      }
    }
  });
}

function combine(problems: Problem[]): PreflightError {
  if (problems.length === 1) return new PreflightError(problems[0]!.message, problems[0]!.hint);
  return new PreflightError(
    `the target is not ready (${problems.length} problems):\n${problems.map((p) => `  - ${p.message}`).join('\n')}`,
    [...new Set(problems.map((p) => p.hint))].join('; '),
  );
}

/** Two things the flow would create under one name (say a renamed table onto another table's sequence). */
function nameCollisions(plans: TablePlan[]): Problem[] {
  const seen = new Map<string, string>();
  const out: Problem[] = [];
  for (const r of createdRelations(plans)) {
    const key = tableKey(r.target);
    const other = seen.get(key);
    if (other && other !== r.what) {
      out.push({ message: `${other} and ${r.what} would both be created as ${key} on the target`, hint: 'rename one of the tables' });
    }
    seen.set(key, r.what);
  }
  return out;
}

/**
 * Built-in types must resolve on the target (a newer source may have types an older target lacks); user types
 * must be creatable (enum, domain, composite) or already there with the same shape; extension types need the
 * extension. Collations the columns name must exist too.
 */
async function typeProblems(client: pg.ClientBase, plans: TablePlan[]): Promise<Problem[]> {
  const defs = typeDefsOfTables(plans);
  const existing = await existingTypes(client, defs.map((d) => d.def));
  const creates = new Set((databaseOf(plans)?.extensions ?? []).map((e) => e.name));
  const out: Problem[] = [];
  const builtins = new Map<string, string>(); // type text -> first column using it
  const collations = new Map<string, string>();
  const seen = new Set<string>();
  for (const p of plans) {
    for (const c of p.table.columns) {
      const where = `${p.key}.${c.name}`;
      const ref = parsePgTypeRef(c.typeRef);
      if (!ref) {
        if (!builtins.has(c.type)) builtins.set(c.type, where);
        continue;
      }
      for (const def of typeDefsOf(ref)) {
        const ex = existing.get(typeKey(def));
        // An extension's type comes with the extension, which Ferry creates (objectProblems checks it is available).
        const carried = def.kind === 'extension' && creates.has(def.extension);
        const problem = ex || carried ? null : missingTypeProblem(def, where);
        // One problem per column for missing types (the user wants the list of columns), one per type otherwise.
        if (problem) out.push(problem);
        if (seen.has(typeKey(def))) continue;
        seen.add(typeKey(def));
        const why = ex ? typeMismatch(def, ex) : null;
        if (why) out.push({ message: `${why} (used by ${where})`, hint: 'make the target type match, or drop it so Ferry creates it' });
        if (!ex && def.kind === 'domain' && !def.base && !builtins.has(def.baseType)) builtins.set(def.baseType, where);
        if (!ex && def.kind === 'domain' && def.collation) collations.set(def.collation, where);
        if (!ex && def.kind === 'composite') {
          for (const a of def.attributes) {
            if (!a.typeRef && !builtins.has(a.type)) builtins.set(a.type, where);
            if (a.collation) collations.set(a.collation, where);
          }
        }
      }
    }
    for (const c of p.extra.collations) if (!collations.has(c.collation)) collations.set(c.collation, `${p.key}.${c.column}`);
  }
  const unknownTypes = await queryJson<string>(
    client,
    `SELECT coalesce(json_agg(t), '[]')::text AS j FROM jsonb_array_elements_text($1::jsonb) t WHERE to_regtype(t) IS NULL`,
    [JSON.stringify([...builtins.keys()])],
  );
  for (const t of unknownTypes) {
    const where = builtins.get(t)!;
    out.push({
      message: `column ${where} has type ${t}, which the target database does not know`,
      hint: `create the type on the target (or upgrade it), or exclude ${where.slice(0, where.lastIndexOf('.'))}`,
    });
  }
  const unknownCollations = await queryJson<string>(
    client,
    `SELECT coalesce(json_agg(c), '[]')::text AS j FROM jsonb_array_elements_text($1::jsonb) c WHERE to_regcollation(c) IS NULL`,
    [JSON.stringify([...collations.keys()])],
  );
  for (const c of unknownCollations) {
    out.push({ message: `column ${collations.get(c)} uses collation ${c}, which the target database lacks`, hint: 'create the collation on the target' });
  }
  return out;
}

async function existingTables(client: pg.ClientBase, plans: TablePlan[]): Promise<Map<string, ExistingTable>> {
  const rows = await queryJson<ExistingTable>(
    client,
    `SELECT coalesce(json_agg(json_build_object('key', w, 'kind', c.relkind::text,
       'columns', (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))
                                   ORDER BY a.attnum), '[]')
                   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))), '[]')::text AS j
     FROM jsonb_array_elements_text($1::jsonb) w JOIN pg_class c ON c.oid = to_regclass(w)`,
    [JSON.stringify(plans.map((p) => qualified(p.table.target)))],
  );
  return new Map(rows.map((r) => [r.key, r]));
}

/** Columns missing on either side or of another type; order and nullability are not the data path's concern. */
function columnDifferences(p: TablePlan, ex: ExistingTable): string[] {
  const out: string[] = [];
  const have = new Map(ex.columns.map((c) => [c.name, c.type]));
  const want = new Map(p.table.columns.map((c) => [c.name, c.type]));
  for (const [name, type] of want) {
    const t = have.get(name);
    if (t === undefined) out.push(`${name} (${type}) is missing on the target`);
    else if (t !== type) out.push(`${name} is ${t} on the target, ${type} on the source`);
  }
  for (const [name, type] of have) if (!want.has(name)) out.push(`${name} (${type}) exists only on the target`);
  return out;
}

/**
 * Run the create step, and the finalize DDL of the tables it creates (cheap on empty tables), then roll back.
 * Finalize DDL is skipped for tables that already exist: building their indexes could take hours.
 */
async function rehearse(client: pg.ClientBase, plans: TablePlan[], existing: Set<string>): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL search_path = ''`);
    // As createTables does (primary keys deferred): finalizeSteps then rehearses adding them.
    await applyCreate(client, plans, { primaryKeys: false });
    const fresh = plans.filter((p) => !existing.has(qualified(p.table.target)));
    const freshKeys = new Set(fresh.map((p) => tableKey(p.table.target)));
    for (const step of finalizeSteps(fresh, plans).steps) {
      if (step.references && !freshKeys.has(tableKey(step.references))) continue;
      await run(client, step.st);
    }
    // The post-data objects too when every table is new (on existing ones they could be slow or already there).
    if (fresh.length === plans.length) {
      await client.query(`SET LOCAL check_function_bodies = false`);
      for (const st of (await postStatements(client, plans)).statements) await run(client, st);
    }
  } catch (err) {
    // The database's own refusal (a permission, a missing function): reported as what it is, before any write.
    if (err instanceof PreflightError || typeof (err as { code?: unknown }).code !== 'string') throw err;
    throw new PreflightError(
      `the target cannot create the flow's tables: ${errorMessage(err)} [SQLSTATE ${(err as { code: string }).code}] (found by a rehearsal that was rolled back)`,
      'fix the cause on the target (a missing privilege, function or extension), or exclude the table concerned',
    );
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}
