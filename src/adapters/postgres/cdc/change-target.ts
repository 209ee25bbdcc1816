/**
 * ChangeTarget for PostgreSQL. A batch is one target transaction; the flow's applied position is written in the same
 * transaction (`_ferry.cdc_position`), so the target itself knows which source transactions it holds.
 *
 * Every batch runs with `session_replication_role = replica`, as native logical replication does: the target's
 * triggers, rules and foreign keys do not fire on replayed changes (the source already ran its own, and their
 * effects arrive as changes of their own).
 *
 * Changes are applied set-based. On a table whose only immediate unique constraint is its primary key, a stretch
 * of changes (across tables, up to a truncate, a key move or a change of another kind of table) is folded per key
 * into its net effect (apply-fold.ts): one DELETE for the keys deleted, one upsert (COPY into the table when the run
 * is large, through a staging table on a replay) for the whole rows, one UPDATE … FROM (VALUES …) per set of present
 * columns; only each key's order matters there, and it is kept. A run of inserts that ends the call goes straight to
 * COPY. Other tables are applied in runs: consecutive inserts into one table become one upsert, consecutive deletes
 * one DELETE … IN, consecutive updates of the same columns one UPDATE … FROM (VALUES …). Runs keep the source order
 * between them, and within a run the last change of a key wins, which is what applying them one by one would leave.
 * Merging can change the outcome in one way only: one statement checks a non-deferrable unique index (or exclusion
 * constraint) row by row, so a swap that the source did through a temporary value, in several statements, can fail
 * when merged. On tables with such an index besides the primary key (never folded), an update run therefore runs
 * under a savepoint and, if it hits a unique or exclusion violation, is applied again one change at a time, in
 * source order, exactly as the source did.
 */
import type { WrappedBatch } from '../../../core/cdc/controlled-target.js';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { EndpointConfig } from '../../../config/schema.js';
import { tableKey, type Position, type TableSchema } from '../../../core/model.js';
import type { Change, RowImage } from '../../../core/ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../../../core/ports/change-target.js';
import { PgPool } from '../pool.js';
import { applyError, refusedByDatabase } from './apply-error.js';
import { BEGIN_AS_REPLICA, replicaRoleError } from '../replica-role.js';
import { copiedColumns } from '../copy-format.js';
import { columnList, ident, qualified } from '../sql.js';
import * as sql from './apply-sql.js';
import { fold, type Fold } from './apply-fold.js';
import { targetRelation } from '../ranges.js';
import { PG_CHANGE_TARGET_CAPABILITIES } from '../capabilities.js';

export const CDC_POSITION_DDL = [
  'CREATE SCHEMA IF NOT EXISTS _ferry',
  `CREATE TABLE IF NOT EXISTS _ferry.cdc_position (flow text PRIMARY KEY, position text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
];

/** Runs at least this long go through COPY into a staging table; shorter ones are one INSERT … VALUES. */
const STAGE_THRESHOLD = 200;
const STATEMENT_ROWS = 1000;
/**
 * COPY data is sent in pieces of about this many characters (the server parses one while the next is built). Under
 * 128 KB, so that each piece is an ordinary young object that a scavenge frees at once: larger strings go to V8's
 * large-object space, which only a full collection frees (RSS grew by tens of MB through a large transaction).
 */
const COPY_CHUNK = 64 << 10;

export class PgChangeTarget implements ChangeTarget {
  readonly capabilities = PG_CHANGE_TARGET_CAPABILITIES;
  private readonly pool: PgPool;

  constructor(config: EndpointConfig, opts: { connections: number }) {
    this.pool = new PgPool(config, 'target', opts.connections);
  }

  appliedPosition(flow: string): Promise<Position | undefined> {
    return this.pool.withClient(async (c) => {
      for (const ddl of CDC_POSITION_DDL) await c.query(ddl);
      const { rows } = await c.query<{ position: string }>(`SELECT position FROM _ferry.cdc_position WHERE flow = $1`, [flow]);
      return rows[0]?.position;
    });
  }

  async begin(flow: string, tables: TableSchema[]): Promise<ApplyBatch> {
    const c = await this.pool.client();
    try {
      await c.query(BEGIN_AS_REPLICA);
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      c.release(err as Error);
      throw replicaRoleError(err, this.pool.endpoint.display) ?? err;
    }
    return new PgApplyBatch(c, flow, new Map(tables.map((t) => [tableKey(t.source), t])), this.uniques, () =>
      this.appliedPosition(flow).catch(() => undefined),
    );
  }

  /** Per target table: does it have a unique index or exclusion constraint, checked immediately, besides its key? */
  private readonly uniques = new Map<string, boolean>();

  async close(): Promise<void> {
    await this.pool.end();
  }
}

class PgApplyBatch implements ApplyBatch {
  private done = false;
  private readonly stages = new Map<string, string>();

  constructor(
    private readonly client: pg.PoolClient,
    private readonly flow: string,
    private readonly tables: Map<string, TableSchema>,
    private readonly uniques: Map<string, boolean>,
    private readonly lastApplied: () => Promise<Position | undefined>,
  ) {}

  /** Tables added or changed while streaming (stream hooks, cdc/stream-hooks.ts): later changes use these. */
  learn(tables: TableSchema[]): void {
    for (const t of tables) this.tables.set(tableKey(t.source), t);
  }

  updateTables(tables: TableSchema[]): void {
    this.learn(tables);
  }

  /** Savepoints of a streamed transaction's batch (one per source subtransaction): names are quoted identifiers. */
  async savepoint(name: string): Promise<void> {
    await this.client.query(`SAVEPOINT ${ident(name)}`);
  }

  async rollbackTo(name: string): Promise<void> {
    await this.client.query(`ROLLBACK TO SAVEPOINT ${ident(name)}`);
  }

  /** The batch's connection, for stream hooks that run DDL or a resync inside this same target transaction. */
  get connection(): pg.ClientBase {
    return this.client;
  }

  private async hasOtherUnique(table: TableSchema): Promise<boolean> {
    const key = tableKey(table.target);
    let v = this.uniques.get(key);
    if (v === undefined) {
      // Deferrable ones are not checked under session_replication_role = replica (their recheck is a trigger).
      const { rows } = await this.client.query<{ u: string }>(
        `SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = $1::regclass AND indimmediate
                          AND ((indisunique AND NOT indisprimary) OR indisexclusion))::text AS u`,
        [qualified(table.target)],
      );
      v = rows[0]?.u === 'true';
      this.uniques.set(key, v);
    }
    return v;
  }

  private table(key: string): TableSchema {
    const t = this.tables.get(key);
    if (!t) throw new Error(`change for ${key}, which is not part of flow ${this.flow}`);
    return t;
  }

  async apply(changes: Change[], at?: Position): Promise<MissingRow[]> {
    const missing: MissingRow[] = [];
    this.failing = undefined;
    try {
      await this.learnConstraints(changes);
      for (let i = 0; i < changes.length; ) {
        this.failing = changes[i]!;
        // A run of inserts into one table that ends the call (a bulk load, many one-row transactions): straight to
        // COPY, with no per-key bookkeeping (keys within it are distinct at the source; a replay falls back).
        const first = changes[i]!;
        if (first.op === 'insert' && changes.length - i >= STAGE_THRESHOLD && insertRunEnd(changes, i) === changes.length) {
          const rows = new Array<RowImage>(changes.length - i);
          for (let k = i; k < changes.length; k++) rows[k - i] = (changes[k] as { row: RowImage }).row;
          await this.upsertRows(this.table(first.table), rows, true);
          break;
        }
        const f = fold(changes, i, (k) => this.table(k), (t) => this.foldable(t), keyMoved);
        if (f.count >= 2) {
          await this.applyFold(f, missing);
          i = f.end;
        } else i = await this.applyRun(changes, i, missing);
      }
    } catch (err) {
      if (!refusedByDatabase(err)) throw err;
      const current = this.failing;
      const table = current && current.op !== 'truncate' ? this.tables.get(current.table) : undefined;
      throw applyError(err, current, table, at ?? { after: await this.lastApplied() });
    }
    return missing;
  }

  /** The change an error is reported against: the one being applied, or a representative of a merged statement. */
  private failing: Change | undefined;

  /** Look up, once per table, what decides whether its changes may be folded (see apply-fold.ts). */
  private async learnConstraints(changes: Change[]): Promise<void> {
    let last: string | undefined;
    for (const c of changes) {
      if (c.op === 'truncate' || c.table === last) continue;
      last = c.table;
      const t = this.tables.get(c.table);
      if (t && t.primaryKey.length > 0 && !this.uniques.has(tableKey(t.target))) await this.hasOtherUnique(t);
    }
  }

  private foldable(table: TableSchema): boolean {
    return table.primaryKey.length > 0 && this.uniques.get(tableKey(table.target)) === false;
  }

  /**
   * The net effect of a folded stretch, table by table: deletes first (a key deleted then inserted again is
   * deleted, then upserted), then the whole rows, then the updates of rows the stretch did not insert. Keys are
   * distinct across the three, so their order between them does not matter (apply-fold.ts says why).
   */
  private async applyFold(f: Fold, missing: MissingRow[]): Promise<void> {
    for (const t of f.tables) {
      const table = tableKey(t.table.source);
      if (t.deletes.length) {
        this.failing = { op: 'delete', table, old: t.deletes[0]! };
        await this.deleteRows(t.table, t.deletes);
      }
      if (t.upserts.length) {
        this.failing = { op: 'insert', table, row: t.upserts[0]! };
        await this.upsertRows(t.table, t.upserts, true);
      }
      for (const group of t.updates) {
        this.failing = { op: 'update', table, row: group[0]!, old: null };
        missing.push(...(await this.updateRows(t.table, group)));
      }
    }
  }

  /** Apply the run of changes that starts at `i`; returns where the next run starts. */
  private async applyRun(changes: Change[], i: number, missing: MissingRow[]): Promise<number> {
    {
      const c = changes[i]!;
      if (c.op === 'truncate') {
        await this.client.query(sql.truncate(c.tables.map((t) => this.table(t)), c.cascade, c.restartIdentity));
        return i + 1;
      }
      const table = this.table(c.table);
      if (c.op === 'update' && (table.primaryKey.length === 0 || keyMoved(table, c.row, c.old))) {
        missing.push(...(await this.updateOne(table, c.row, c.old)));
        return i + 1;
      }
      // A run: same operation, same table (and for updates, the same columns).
      const sig = c.op === 'update' ? Object.keys(c.row).join('\u0000') : '';
      let j = i + 1;
      while (j < changes.length) {
        const n = changes[j]!;
        if (n.op !== c.op || n.table !== c.table) break;
        if (n.op === 'update' && (Object.keys(n.row).join('\u0000') !== sig || keyMoved(table, n.row, n.old))) break;
        j++;
      }
      const run = changes.slice(i, j);
      if (c.op === 'insert') await this.upsertRows(table, run.map((x) => (x as { row: RowImage }).row));
      else if (c.op === 'delete') await this.deleteRows(table, run.map((x) => (x as { old: RowImage }).old));
      else missing.push(...(await this.updateRun(table, run.map((x) => (x as { row: RowImage }).row))));
      return j;
    }
  }

  /**
   * A run of updates that keep their key. Merged into one statement, unless that could fail where the source did
   * not (see the header): then the run is replayed one change at a time, in order.
   */
  private async updateRun(table: TableSchema, rows: RowImage[]): Promise<MissingRow[]> {
    if (rows.length < 2 || !(await this.hasOtherUnique(table))) return this.updateRows(table, rows);
    await this.client.query('SAVEPOINT ferry_update_run');
    try {
      const missing = await this.updateRows(table, rows);
      await this.client.query('RELEASE SAVEPOINT ferry_update_run');
      return missing;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== '23505' && code !== '23P01') throw err;
      await this.client.query('ROLLBACK TO SAVEPOINT ferry_update_run');
    }
    const missing: MissingRow[] = [];
    for (const r of rows) missing.push(...(await this.updateRows(table, [r])));
    return missing;
  }

  async upsert(tableKeyName: string, rows: RowImage[]): Promise<void> {
    await this.upsertRows(this.table(tableKeyName), rows);
  }

  /**
   * Upsert whole rows. `distinct`: the caller knows no key repeats (a run of inserts straight from the source), so
   * the COPY fast path takes the rows as they are; should one repeat after all, the fallback removes the repeats.
   */
  private async upsertRows(table: TableSchema, rows: RowImage[], distinct = false): Promise<void> {
    if (rows.length === 0) return;
    const columns = copiedColumns(table).filter((c) => c in rows[0]!);
    const identity = sql.identityToFix(table, columns);
    if (rows.length < STAGE_THRESHOLD || table.primaryKey.length === 0) {
      const unique = lastPerKey(table, rows);
      if (unique.length < STAGE_THRESHOLD) {
        for (let i = 0; i < unique.length; i += STATEMENT_ROWS) {
          await this.client.query(sql.upsertValues(table, columns, unique.slice(i, i + STATEMENT_ROWS)));
        }
        await this.fixIdentity(table, identity, unique);
        return;
      }
      if (table.primaryKey.length === 0) {
        await this.copyInto(qualified(table.target), columns, unique);
        return;
      }
      rows = unique;
      distinct = true;
    }
    // Fast path: new rows are the common case, and a plain COPY is about three times cheaper than an upsert.
    // If any key already exists (a replay), the savepoint undoes the attempt and the upsert below runs instead.
    const source = distinct ? rows : lastPerKey(table, rows);
    await this.client.query('SAVEPOINT ferry_insert');
    try {
      await this.copyInto(qualified(table.target), columns, source);
      await this.client.query('RELEASE SAVEPOINT ferry_insert');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw this.locate(err, table, source);
      await this.client.query('ROLLBACK TO SAVEPOINT ferry_insert');
    }
    const unique = distinct ? lastPerKey(table, rows) : source;
    const stage = await this.stage(table);
    await this.copyInto(stage, columns, unique);
    await this.client.query(sql.upsertFromStage(table, stage, columns));
    await this.client.query(`TRUNCATE ${stage}`);
    await this.fixIdentity(table, identity, unique);
  }

  /** A COPY the target refused names its line: report the change of that row (not the run's first). */
  private locate(err: unknown, table: TableSchema, rows: RowImage[]): unknown {
    const line = /, line (\d+)/.exec((err as { where?: string }).where ?? '');
    const row = line ? rows[Number(line[1]) - 1] : undefined;
    if (row) this.failing = { op: 'insert', table: tableKey(table.source), row };
    return err;
  }

  /** Identity ALWAYS values an upsert or update could not assign (see apply-sql.ts). */
  private async fixIdentity(table: TableSchema, identity: string[], rows: RowImage[]): Promise<void> {
    if (identity.length === 0 || table.primaryKey.length === 0) return;
    for (let i = 0; i < rows.length; i += STATEMENT_ROWS) {
      await this.client.query(sql.fixIdentity(table, identity, rows.slice(i, i + STATEMENT_ROWS)));
    }
  }

  /** A temporary table shaped like the target table, created once per connection. */
  private async stage(table: TableSchema): Promise<string> {
    const key = tableKey(table.target);
    let name = this.stages.get(key);
    if (!name) {
      // The column list is part of the name: a column added while streaming needs a stage of the new shape, and a
      // temporary table of the old shape can outlive this batch on the same pooled connection.
      const shape = createHash('sha1').update(table.columns.map((c) => `${c.name}\u0000${c.type}`).join('\u0001')).digest('hex').slice(0, 8);
      name = `pg_temp.${ident(`_ferry_stage_${Buffer.from(key).toString('hex').slice(0, 40)}_${shape}`)}`;
      await this.client.query(`CREATE TEMP TABLE IF NOT EXISTS ${name} (LIKE ${qualified(table.target)})`);
      this.stages.set(key, name);
    }
    return name;
  }

  private async copyInto(target: string, columns: string[], rows: RowImage[]): Promise<void> {
    const copy = this.client.query(copyStreams.from(`COPY ${target} (${columnList(columns)}) FROM STDIN`));
    await pipeline(Readable.from(sql.copyChunks(columns, rows, COPY_CHUNK)), copy);
  }

  private async deleteRows(table: TableSchema, olds: RowImage[]): Promise<void> {
    if (table.primaryKey.length === 0) {
      for (const old of olds) await this.client.query(`DELETE FROM ${targetRelation(table)} WHERE ${sql.matchOldRow(table, old)}`);
      return;
    }
    const keys = olds.map((o) => sql.keyOf(table, o)).filter((k): k is string[] => k !== undefined);
    for (let i = 0; i < keys.length; i += STATEMENT_ROWS) {
      await this.client.query(sql.deleteKeys(table, keys.slice(i, i + STATEMENT_ROWS)));
    }
  }

  /** Updates that keep their key and set the same columns. */
  private async updateRows(table: TableSchema, rows: RowImage[]): Promise<MissingRow[]> {
    const unique = lastPerKey(table, rows);
    const columns = Object.keys(unique[0] ?? {});
    const found = new Set<string>();
    for (let i = 0; i < unique.length; i += STATEMENT_ROWS) {
      const { rows: hit } = await this.client.query<string[]>({ text: sql.updateMany(table, columns, unique.slice(i, i + STATEMENT_ROWS)), rowMode: 'array' });
      for (const k of hit) found.add(JSON.stringify(k));
    }
    await this.fixIdentity(table, sql.identityToFix(table, columns), unique.filter((r) => found.has(JSON.stringify(sql.keyOf(table, r)))));
    const absent = unique.filter((r) => !found.has(JSON.stringify(sql.keyOf(table, r))));
    return this.completeOrReport(table, absent);
  }

  /** Rows an update did not find: insert them when the change carries every column, else report them missing. */
  private async completeOrReport(table: TableSchema, absent: RowImage[]): Promise<MissingRow[]> {
    if (absent.length === 0) return [];
    const all = copiedColumns(table);
    const complete = absent.filter((r) => all.every((c) => c in r));
    await this.upsertRows(table, complete);
    return absent
      .filter((r) => !all.every((c) => c in r))
      .map((r) => ({ table: tableKey(table.source), key: Object.fromEntries(table.primaryKey.map((c) => [c, r[c] ?? null])) }));
  }

  /** A key change (the row moves) or any update of a keyless table (matched on its old values). */
  private async updateOne(table: TableSchema, row: RowImage, old: RowImage | null): Promise<MissingRow[]> {
    // ONLY: the rows of an INHERITS parent's children are changes of their own tables.
    const target = targetRelation(table);
    // An identity ALWAYS column cannot be assigned by UPDATE: the row is replaced instead.
    const always = sql.alwaysIdentity(table);
    const update = (where: string) =>
      Object.keys(row).some((c) => always.has(c)) ? sql.replaceRow(table, row, where) : sql.updateOne(table, row, where);
    if (table.primaryKey.length === 0) {
      if (!old) throw new Error(`update of ${tableKey(table.source)} without its old row: the source table needs REPLICA IDENTITY FULL`);
      const r = await this.client.query(update(sql.matchOldRow(table, old)));
      if (r.rowCount === 0) await this.upsertRows(table, [{ ...old, ...row }]);
      return [];
    }
    const oldKey = sql.keyOf(table, old!)!;
    const newKey = sql.keyOf(table, row)!;
    const { rowCount } = await this.client.query(`SELECT 1 FROM ${target} WHERE ${sql.keyPredicate(table, oldKey)}`);
    if (rowCount) {
      // Whatever holds the new key is older than this move (a later snapshot chunk): the moved row replaces it.
      await this.client.query(`DELETE FROM ${target} WHERE ${sql.keyPredicate(table, newKey)}`);
      await this.client.query(update(sql.keyPredicate(table, oldKey)));
      return [];
    }
    return this.updateRows(table, [row]);
  }

  async commit(position: Position): Promise<void> {
    try {
      await this.client.query(
        `INSERT INTO _ferry.cdc_position (flow, position) VALUES ($1, $2)
         ON CONFLICT (flow) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
        [this.flow, position as string],
      );
      await this.client.query('COMMIT');
    } catch (err) {
      await this.rollback(err as Error);
      throw err;
    }
    this.finish();
  }

  async rollback(err?: Error): Promise<void> {
    if (this.done) return;
    await this.client.query('ROLLBACK').catch(() => {});
    this.finish(err);
  }

  private finish(err?: Error): void {
    if (this.done) return;
    this.done = true;
    this.client.release(err);
  }
}

/** The PostgreSQL side of a batch, for stream hooks (undefined for another target's batch). */
export function pgBatch(batch: ApplyBatch): { connection: pg.ClientBase; learn(tables: TableSchema[]): void } | undefined {
  if (batch instanceof PgApplyBatch) return batch;
  // A batch wrapped by the flow's controls (core/cdc/controlled-target.ts): its tables reach this one mapped.
  const w = batch as Partial<WrappedBatch>;
  const inner = w.inner && w.mapTables ? pgBatch(w.inner) : undefined;
  return inner && { connection: inner.connection, learn: (tables) => inner.learn(w.mapTables!(tables)) };
}

/** Where the run of inserts into one table that starts at `i` ends. */
function insertRunEnd(changes: Change[], i: number): number {
  const first = changes[i]!;
  if (first.op !== 'insert') return i;
  let j = i + 1;
  while (j < changes.length) {
    const n = changes[j]!;
    if (n.op !== 'insert' || n.table !== first.table) break;
    j++;
  }
  return j;
}

function keyMoved(table: TableSchema, row: RowImage, old: RowImage | null): boolean {
  if (!old || table.primaryKey.length === 0) return false;
  return table.primaryKey.some((c) => c in old && old[c] !== row[c]);
}

/** Keep the last row of each key, in first-seen order (keyless tables keep every row). */
function lastPerKey(table: TableSchema, rows: RowImage[]): RowImage[] {
  if (table.primaryKey.length === 0 || rows.length < 2) return rows;
  const byKey = new Map<string | null | undefined, RowImage>();
  const single = table.primaryKey.length === 1 ? table.primaryKey[0]! : undefined;
  for (const r of rows) byKey.set(single !== undefined ? r[single] : JSON.stringify(sql.keyOf(table, r)), r);
  return byKey.size === rows.length ? rows : [...byKey.values()];
}
