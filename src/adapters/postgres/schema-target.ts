/**
 * The schema half of the PostgreSQL target: check, create, finalize. A table is created bare, without even its
 * primary key, and the rest (primary key first, then indexes, constraints, foreign keys, sequence values) comes
 * after the data, when building each is one sorted pass instead of a cost on every loaded row (the target's COPY
 * backend is the snapshot's bottleneck). The load path does not need the key: a chunk's rows and its progress
 * marker commit together, so only a chunk that may have been attempted before deletes its range first
 * (range-writer.ts), and that delete is a scan only on such retries.
 */
import type pg from 'pg';
import { FerryError, errorMessage } from '../../core/errors.js';
import { tableKey, type TableName, type TableSchema } from '../../core/model.js';
import type { SequenceValue } from '../../core/ports/source.js';
import { queryJson, withEmptySearchPath } from './catalog.js';
import { planOf, type Statement } from './ddl.js';
import { applyColumnRenames, renamedTables } from './column-renames.js';
import { qualified } from './sql.js';
import { postStatements } from './objects-target.js';
import { applyCreate, finalizeSteps, run } from './target-ddl.js';

export { checkTargetTables, type CheckOptions } from './schema-check.js';

/** What already has this relation name: the table it indexes, `a non-index relation`, or null when it is free. */
async function indexOwner(client: pg.ClientBase, index: TableName): Promise<string | null> {
  const res = await client.query<{ owner: string | null }>(
    `SELECT coalesce((SELECT n.nspname || '.' || t.relname FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid
                      JOIN pg_namespace n ON n.oid = t.relnamespace WHERE x.indexrelid = c.oid), 'a non-index relation') AS owner
     FROM pg_class c WHERE c.oid = to_regclass($1)`,
    [qualified(index)],
  );
  return res.rows[0]?.owner ?? null;
}

/**
 * The deferred primary key, built in one pass over the loaded rows. Duplicates mean rows reached the target that
 * the flow's own chunks did not account for (something else wrote the table during the load): say so.
 */
async function addPrimaryKey(client: pg.ClientBase, st: Statement, table: TableName): Promise<void> {
  try {
    await client.query(st.sql);
  } catch (err) {
    const e = err as { code?: string; detail?: string };
    if (e.code !== '23505') return run(client, st); // reported as any refused statement
    throw new FerryError(
      `the primary key of ${tableKey(table)} cannot be built at finalize: ${errorMessage(err)}${e.detail ? ` (${e.detail})` : ''}`,
      'the table holds rows twice that the snapshot loaded once: something else wrote it during the load. ' +
        'Empty it (or set `target.onExistingRows: truncate` after `ferry reset`) and copy it again',
    );
  }
}

/** Serializes concurrent createTables calls (several workers starting at once) on one target database. */
const CREATE_LOCK = `SELECT pg_advisory_xact_lock(hashtext('ferry:create-tables'))`;

/**
 * Create schemas, enums, domains, composite types, sequences and tables, in one transaction: a failure leaves the
 * target as it was. Idempotent: existing objects are kept. Tables are bare (no primary key: the snapshot loads
 * faster without it, and finalize adds it) unless `primaryKeys`, for tables that take changes at once.
 */
export async function createTables(client: pg.ClientBase, tables: TableSchema[], opts: { primaryKeys?: boolean } = {}): Promise<void> {
  const plans = planOf(tables);
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL search_path = ''`);
    await client.query(CREATE_LOCK);
    await applyCreate(client, plans, { primaryKeys: opts.primaryKeys ?? false });
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Build secondary indexes, constraints and foreign keys, then set each sequence to the source's value. Each
 * statement commits on its own, so a failure late in a long finalize keeps the indexes already built; a rerun
 * skips what exists. Returns what was skipped (foreign keys to tables outside the flow, unknown sequences).
 */
export async function finalizeTables(
  client: pg.ClientBase,
  tables: TableSchema[],
  sequences: SequenceValue[],
): Promise<{ warnings: string[] }> {
  const allPlans = planOf(tables);
  return withEmptySearchPath(client, async () => {
    // Tables whose columns were renamed had everything built before the rename (column-renames.ts).
    const renamed = await renamedTables(client, tables);
    const plans = allPlans.filter((p) => !renamed.has(p.key));
    const { steps, warnings } = finalizeSteps(plans);
    const constraints = await queryJson<{ t: string; c: string; p: boolean }>(
      client,
      `SELECT coalesce(json_agg(json_build_object('t', w, 'c', con.conname, 'p', con.contype = 'p')), '[]')::text AS j
       FROM jsonb_array_elements_text($1::jsonb) w
       JOIN pg_constraint con ON con.conrelid = to_regclass(w)`,
      [JSON.stringify(plans.map((p) => qualified(p.table.target)))],
    );
    const existing = new Set(constraints.map((r) => `${r.t}\u0000${r.c}`));
    const keyed = new Set(constraints.filter((r) => r.p).map((r) => r.t));
    for (const step of steps) {
      if (step.constraint !== null && existing.has(`${qualified(step.table)}\u0000${step.constraint}`)) continue;
      if (step.primaryKey) {
        if (!keyed.has(qualified(step.table))) await addPrimaryKey(client, step.st, step.table);
        continue;
      }
      if (step.index !== null) {
        // CREATE INDEX IF NOT EXISTS would silently skip an index whose name another relation already has.
        const owner = await indexOwner(client, { schema: step.table.schema, name: step.index });
        if (owner !== null && owner !== tableKey(step.table)) {
          warnings.push(`index ${step.index} of ${tableKey(step.table)} not created: ${owner} already uses the name in its schema`);
          continue;
        }
      }
      await run(client, step.st);
    }

    for (const sv of sequences) {
      const plan = allPlans.find((p) => p.key === sv.table);
      const seq = plan?.extra.sequences.find((s) => s.column === sv.column);
      if (!plan || !seq) {
        warnings.push(`sequence value for ${sv.table}.${sv.column} matches no sequence of the flow's tables: not set`);
        continue;
      }
      try {
        await client.query('SELECT setval($1::regclass, $2::int8, $3::boolean)', [
          qualified(seq.target),
          sv.lastValue,
          sv.isCalled,
        ]);
      } catch (err) {
        throw new FerryError(
          `cannot set sequence ${tableKey(seq.target)} (for ${sv.table}.${sv.column}) to ${sv.lastValue}: ${errorMessage(err)}`,
        );
      }
    }

    // Views, triggers, policies, owners, grants, comments: after the data, each statement on its own.
    const post = await postStatements(client, plans);
    warnings.push(...post.warnings);
    if (post.statements.length > 0) {
      await client.query(`SELECT set_config('check_function_bodies', 'false', false)`);
      try {
        for (const st of post.statements) await run(client, st);
      } finally {
        await client.query(`SELECT set_config('check_function_bodies', 'true', false)`).catch(() => {});
      }
    }
    await applyColumnRenames(client, tables);
    return { warnings };
  });
}
