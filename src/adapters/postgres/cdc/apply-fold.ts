/**
 * Folding a stretch of changes into its net effect per key, so that a workload that interleaves inserts, updates and
 * deletes (and tables) is applied as a few set-based statements instead of one statement per change.
 *
 * Why it is exact: on a table whose only immediate unique constraint is its primary key, every constraint the
 * target checks is about one key (the key itself) or one row (NOT NULL, CHECK, types); foreign keys and ordinary
 * triggers do not fire under session_replication_role = replica. So the outcome depends only on the order of the
 * changes *of each key*, which the fold keeps: the changes of one key collapse, in source order, into the one
 * statement that leaves what they would have left (upsert the final row, delete, or set the final values of the
 * columns present), and statements for different keys commute. The intermediate row states skipped were states
 * the source itself held (and so passed the same row checks).
 *
 * What cannot fold ends a stretch, and is applied by the caller on its own, in order: a truncate, a key move (its
 * row may lack unchanged TOAST values, so it is not a delete plus an insert), a change of a keyless table or of a
 * table with another unique index or exclusion constraint (those compare rows across keys: the source's order
 * matters), a key with a NULL column, an update of a key deleted earlier in the stretch (the source cannot send
 * that; applied in order it is a no-op the caller reports), and a second source table writing the same target table.
 */
import type { Change, RowImage } from '../../../core/ports/change-source.js';
import type { TableSchema } from '../../../core/model.js';
import { tableKey } from '../../../core/model.js';

/** One key's net effect. `deleted`: remove what the target holds for the key first (then insert `row`, if any). */
interface KeyState {
  deleted: boolean;
  /**
   * 'row': `row` is a whole row (an insert, maybe updated since). 'set': `row` holds the columns updated, to set on
   * the target's row. 'none': deleted last; `row` is the delete's image (it holds the key).
   */
  kind: 'row' | 'set' | 'none';
  row: RowImage;
}

/** The net effect of a stretch, per table, in the order the tables first appear. */
export interface FoldedTable {
  table: TableSchema;
  /** Rows whose keys are deleted (for a delete, or a delete then an insert of the same key). */
  deletes: RowImage[];
  /** Whole rows to upsert (inserts, with later updates of the same key merged in). */
  upserts: RowImage[];
  /** Updates of rows the stretch did not insert, grouped by their set of present columns. */
  updates: RowImage[][];
}

export interface Fold {
  tables: FoldedTable[];
  /** Index of the first change not folded. */
  end: number;
  /** Changes folded (end minus start). */
  count: number;
}

/**
 * Fold changes from `start` while they can be folded. `foldable(table)` says whether a table qualifies (primary key,
 * no other immediate unique or exclusion constraint); `moved` whether an update moves its key.
 */
export function fold(
  changes: Change[],
  start: number,
  schemaOf: (key: string) => TableSchema,
  foldable: (table: TableSchema) => boolean,
  moved: (table: TableSchema, row: RowImage, old: RowImage | null) => boolean,
): Fold {
  const perTable = new Map<string, { table: TableSchema; keys: Map<string, KeyState> }>();
  const targets = new Map<string, string>();
  let i = start;
  for (; i < changes.length; i++) {
    const c = changes[i]!;
    if (c.op === 'truncate') break;
    let t = perTable.get(c.table);
    if (!t) {
      const table = schemaOf(c.table);
      if (!foldable(table)) break;
      const target = tableKey(table.target);
      if (targets.has(target) && targets.get(target) !== c.table) break;
      targets.set(target, c.table);
      t = { table, keys: new Map() };
      perTable.set(c.table, t);
    }
    const table = t.table;
    if (c.op === 'update' && moved(table, c.row, c.old)) break;
    const image = c.op === 'delete' ? c.old : c.row;
    const key = keyString(table.primaryKey, image);
    if (key === undefined) break;
    const s = t.keys.get(key);
    if (c.op === 'insert') {
      if (s) {
        s.kind = 'row';
        s.row = c.row;
      } else t.keys.set(key, { deleted: false, kind: 'row', row: c.row });
    } else if (c.op === 'update') {
      if (!s) t.keys.set(key, { deleted: false, kind: 'set', row: c.row });
      else if (s.kind === 'none') break;
      else s.row = { ...s.row, ...c.row };
    } else if (s) {
      // The delete's image holds the key: it is what the delete statement needs.
      s.deleted = true;
      s.kind = 'none';
      s.row = c.old;
    } else t.keys.set(key, { deleted: true, kind: 'none', row: c.old });
  }
  const tables: FoldedTable[] = [];
  for (const { table, keys } of perTable.values()) {
    const deletes: RowImage[] = [];
    const upserts: RowImage[] = [];
    const bySig = new Map<string, RowImage[]>();
    for (const s of keys.values()) {
      if (s.deleted) deletes.push(s.row);
      if (s.kind === 'row') upserts.push(s.row);
      else if (s.kind === 'set') {
        const sig = Object.keys(s.row).join('\u0000');
        const group = bySig.get(sig);
        if (group) group.push(s.row);
        else bySig.set(sig, [s.row]);
      }
    }
    tables.push({ table, deletes, upserts, updates: [...bySig.values()] });
  }
  return { tables, end: i, count: i - start };
}

/** The key as one string (PostgreSQL text never holds NUL, so NUL separates columns unambiguously). */
export function keyString(primaryKey: string[], row: RowImage): string | undefined {
  if (primaryKey.length === 1) {
    const v = row[primaryKey[0]!];
    return v === undefined || v === null ? undefined : v;
  }
  let out = '';
  for (let n = 0; n < primaryKey.length; n++) {
    const v = row[primaryKey[n]!];
    if (v === undefined || v === null) return undefined;
    out += n === 0 ? v : `\u0000${v}`;
  }
  return out;
}
