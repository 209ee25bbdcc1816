/**
 * The statements that write rows for one apply batch (its connection): upserts of whole rows, deletes and updates
 * by key, key moves and keyless rows. change-target.ts decides which changes go together; this file decides how a
 * set of them reaches the target:
 *
 * - many whole rows (≥ COPY_ROWS): COPY into the table under a savepoint (a plain COPY costs the target about a
 *   third of an upsert); if a key exists already (a replay), the savepoint undoes it and the rows go through a
 *   staging table into an upsert;
 * - fewer rows, deletes and updates: one statement per table and shape with the values as array parameters
 *   (apply-arrays.ts), prepared once per connection; where a column's type is an array itself, the statements with
 *   literals of apply-sql.ts instead (chunks of STATEMENT_ROWS).
 *
 * An update that finds fewer rows than it was given (its row count; keys are distinct) asks which keys are missing:
 * a missing row is inserted when the change carries every column, and reported otherwise (the streamer reads it
 * from the source). Unchanged TOAST values are never written: an update sets only the columns its change carries.
 */
import copyStreams from 'pg-copy-streams';
import type pg from 'pg';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tableKey, type TableSchema } from '../../../core/model.js';
import type { Change, RowImage } from '../../../core/ports/change-source.js';
import type { MissingRow } from '../../../core/ports/change-target.js';
import { copiedColumns } from '../copy-format.js';
import { targetRelation } from '../ranges.js';
import { columnList, ident, qualified } from '../sql.js';
import * as arr from './apply-arrays.js';
import * as sql from './apply-sql.js';
import { keyString } from './apply-fold.js';
import { copyChunks } from './apply-copy.js';

/**
 * Whole-row runs at least this long are COPYed; shorter ones are one upsert statement. Measured with
 * bench/apply-cpu.ts: an upsert from arrays costs the target about 13 µs a row, a COPY about 10, but a COPY costs a
 * fixed share too (a savepoint, its release and the copy stream: about 1 ms of Ferry's CPU), so at 200-row runs the
 * upsert was cheaper in all and at 500 rows the COPY.
 */
export const COPY_ROWS = 500;
/** Rows per statement where values are literals in the statement text. */
const STATEMENT_ROWS = 1000;
/**
 * COPY data is sent in pieces of about this many characters (the server parses one while the next is built). Under
 * 128 KB, so that each piece is an ordinary young object that a scavenge frees at once: larger strings go to V8's
 * large-object space, which only a full collection frees (RSS grew by tens of MB through a large transaction).
 */
const COPY_CHUNK = 64 << 10;

export class PgRowWriter {
  /** The change an error is reported against: the one being applied, or a representative of a merged statement. */
  failing: Change | undefined;
  private readonly stages = new Map<string, string>();

  constructor(private readonly client: pg.ClientBase) {}

  /**
   * Upsert whole rows. `distinct`: the caller knows no key repeats (a run of inserts straight from the source, or a
   * fold), so the rows are taken as they are; should one repeat after all, the COPY fallback removes the repeats.
   */
  async upsertRows(table: TableSchema, rows: RowImage[], distinct = false): Promise<void> {
    if (rows.length === 0) return;
    const columns = copiedColumns(table).filter((c) => c in rows[0]!);
    const identity = sql.identityToFix(table, columns);
    const keyed = table.primaryKey.length > 0;
    const unique = distinct || !keyed ? rows : lastPerKey(table, rows);
    if (unique.length < COPY_ROWS) {
      if (arr.arraysFit(table, columns)) {
        await this.client.query(arr.prepared(arr.upsertStatement(table, columns, sql.onConflict(table, columns)), arr.arrayParams(unique, columns)));
      } else {
        for (let i = 0; i < unique.length; i += STATEMENT_ROWS) {
          await this.client.query(sql.upsertValues(table, columns, unique.slice(i, i + STATEMENT_ROWS)));
        }
      }
      await this.fixIdentity(table, identity, unique);
      return;
    }
    if (!keyed) {
      await this.copyInto(table, qualified(table.target), columns, unique);
      return;
    }
    // Fast path: new rows are the common case. If any key already exists (a replay), the savepoint undoes the
    // attempt and the upsert through a staging table runs instead.
    await this.client.query('SAVEPOINT ferry_insert');
    try {
      await this.copyInto(table, qualified(table.target), columns, unique);
      await this.client.query('RELEASE SAVEPOINT ferry_insert');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw this.locate(err, table, unique);
      await this.client.query('ROLLBACK TO SAVEPOINT ferry_insert');
    }
    const last = distinct ? lastPerKey(table, rows) : unique;
    const stage = await this.stage(table);
    await this.copyInto(table, stage, columns, last);
    await this.client.query(sql.upsertFromStage(table, stage, columns));
    await this.client.query(`TRUNCATE ${stage}`);
    await this.fixIdentity(table, identity, last);
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

  private async copyInto(table: TableSchema, into: string, columns: string[], rows: RowImage[]): Promise<void> {
    const copy = this.client.query(copyStreams.from(`COPY ${into} (${columnList(columns)}) FROM STDIN`));
    await pipeline(Readable.from(copyChunks(table, columns, rows, COPY_CHUNK)), copy);
  }

  async deleteRows(table: TableSchema, olds: RowImage[]): Promise<void> {
    if (table.primaryKey.length === 0) {
      for (const old of olds) await this.client.query(`DELETE FROM ${targetRelation(table)} WHERE ${sql.matchOldRow(table, old)}`);
      return;
    }
    const withKey = olds.filter((o) => sql.keyOf(table, o) !== undefined);
    if (withKey.length === 0) return;
    if (arr.arraysFit(table, table.primaryKey)) {
      await this.client.query(arr.prepared(arr.deleteStatement(table), arr.arrayParams(withKey, table.primaryKey)));
      return;
    }
    for (let i = 0; i < withKey.length; i += STATEMENT_ROWS) {
      await this.client.query(sql.deleteKeys(table, withKey.slice(i, i + STATEMENT_ROWS).map((o) => sql.keyOf(table, o)!)));
    }
  }

  /** Updates that keep their key and set the same columns (`distinct`: keys known not to repeat). */
  async updateRows(table: TableSchema, rows: RowImage[], distinct = false): Promise<MissingRow[]> {
    const unique = distinct ? rows : lastPerKey(table, rows);
    if (unique.length === 0) return [];
    const columns = Object.keys(unique[0]!);
    const always = sql.alwaysIdentity(table);
    const keyCols = table.primaryKey;
    const setCols = columns.filter((c) => !keyCols.includes(c) && !always.has(c));
    let absent: RowImage[];
    if (arr.arraysFit(table, [...keyCols, ...setCols])) {
      const noop = table.columns.find((c) => !always.has(c.name) && !c.generated)?.name;
      const r = await this.client.query(arr.prepared(arr.updateStatement(table, setCols, noop), arr.arrayParams(unique, [...keyCols, ...setCols])));
      absent = (r.rowCount ?? 0) >= unique.length ? [] : await this.missing(table, unique);
    } else {
      const found = new Set<string>();
      for (let i = 0; i < unique.length; i += STATEMENT_ROWS) {
        const { rows: hit } = await this.client.query<string[]>({ text: sql.updateMany(table, columns, unique.slice(i, i + STATEMENT_ROWS)), rowMode: 'array' });
        for (const k of hit) found.add(k.join('\u0000'));
      }
      absent = unique.filter((r) => !found.has(keyString(keyCols, r)!));
    }
    const identity = sql.identityToFix(table, columns);
    if (identity.length) {
      const gone = new Set(absent);
      await this.fixIdentity(table, identity, unique.filter((r) => !gone.has(r)));
    }
    return this.completeOrReport(table, absent);
  }

  /** The rows whose keys the target does not hold (after an update found fewer rows than it was given). */
  private async missing(table: TableSchema, rows: RowImage[]): Promise<RowImage[]> {
    if (arr.arraysFit(table, table.primaryKey)) {
      const { rows: hit } = await this.client.query<{ i: number }>(arr.prepared(arr.missingStatement(table), arr.arrayParams(rows, table.primaryKey)));
      return hit.map((h) => rows[h.i - 1]!);
    }
    const out: RowImage[] = [];
    for (const r of rows) {
      const { rowCount } = await this.client.query(`SELECT 1 FROM ${targetRelation(table)} WHERE ${sql.keyPredicate(table, sql.keyOf(table, r)!)}`);
      if (!rowCount) out.push(r);
    }
    return out;
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
  async updateOne(table: TableSchema, row: RowImage, old: RowImage | null): Promise<MissingRow[]> {
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
}

/** Keep the last row of each key, in first-seen order (keyless tables keep every row). */
export function lastPerKey(table: TableSchema, rows: RowImage[]): RowImage[] {
  if (table.primaryKey.length === 0 || rows.length < 2) return rows;
  const byKey = new Map<string | undefined, RowImage>();
  for (const r of rows) byKey.set(keyString(table.primaryKey, r), r);
  return byKey.size === rows.length ? rows : [...byKey.values()];
}
