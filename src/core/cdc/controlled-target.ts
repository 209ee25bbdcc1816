/**
 * A change target with the config's controls in front of it: the apply limit (`limits.applyChangesPerSecond`),
 * the row filter where the source's publication does not apply it (PostgreSQL before 15, a filter over columns
 * outside the replica identity, a partitioned table), and the column mapping (excluded columns dropped, renamed
 * ones renamed: column-map.ts). Everything the target sees is in its own names (targetView); a key it reports
 * missing is handed back in source names, for the streamer to fetch from the source.
 *
 * Row filter done by Ferry, change by change (the publication's own filter behaves the same way):
 * - insert: applied when the new row matches;
 * - update: the new row matches → upserted (an UPDATE that moves a row into the filter inserts it); it does not →
 *   deleted by key (one that moves a row out deletes it). An UPDATE whose new image lacks a column the filter uses
 *   (an unchanged TOAST value) is applied as it is, not re-evaluated;
 * - delete: always applied (deleting a row the target never had changes nothing).
 * Keyless tables: inserts are filtered, updates and deletes go through as they are.
 */
import { tableKey, type Position, type TableSchema } from '../model.js';
import type { Change, RowImage } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { TokenBucket } from '../throttle.js';
import { mapChange, mapImage, mapsRows, mentionedColumns, targetView, unmapImage } from './column-map.js';

/** Evaluates a table's row filter (`controls.where`) on row images in source names; the source's semantics. */
export interface RowFilter {
  matches(table: TableSchema, rows: RowImage[]): Promise<boolean[]>;
  close(): Promise<void>;
}

export interface ControlOptions {
  throttle?: TokenBucket;
  filter?: RowFilter;
}

/** A batch that wraps another: adapters whose stream hooks need their own batch type look through it. */
export interface WrappedBatch extends ApplyBatch {
  readonly inner: ApplyBatch;
  /** Table schemas as the inner batch must see them. */
  mapTables(tables: TableSchema[]): TableSchema[];
}

const filteredByFerry = (t: TableSchema | undefined): boolean => !!t?.controls?.where && !t.controls.published.where;

/** `inner` itself when nothing is to be controlled. */
export function controlledChangeTarget(inner: ChangeTarget, tables: TableSchema[], opts: ControlOptions): ChangeTarget {
  const anyControls = tables.some((t) => t.controls);
  if (!anyControls && !opts.throttle) return inner;
  if (tables.some(filteredByFerry) && !opts.filter) throw new Error('a row filter done by Ferry needs a RowFilter');
  return {
    capabilities: inner.capabilities,
    appliedPosition: (flow) => inner.appliedPosition(flow),
    async begin(flow, ts) {
      const known = new Map(ts.map((t) => [tableKey(t.source), t]));
      return new ControlledBatch(await inner.begin(flow, ts.map(targetView)), known, opts);
    },
    close: () => inner.close(),
  };
}

class ControlledBatch implements WrappedBatch {
  savepoint?: (name: string) => Promise<void>;
  rollbackTo?: (name: string) => Promise<void>;

  constructor(
    readonly inner: ApplyBatch,
    private readonly tables: Map<string, TableSchema>,
    private readonly opts: ControlOptions,
  ) {
    if (inner.savepoint) this.savepoint = (n) => inner.savepoint!(n);
    if (inner.rollbackTo) this.rollbackTo = (n) => inner.rollbackTo!(n);
  }

  mapTables(ts: TableSchema[]): TableSchema[] {
    for (const t of ts) this.tables.set(tableKey(t.source), t);
    return ts.map(targetView);
  }

  updateTables(ts: TableSchema[]): void {
    const mapped = this.mapTables(ts);
    this.inner.updateTables?.(mapped);
  }

  async apply(changes: Change[], at?: Position): Promise<MissingRow[]> {
    await this.opts.throttle?.take(changes.length);
    const filtered = await this.filter(changes);
    const mapped = filtered.map((c) => {
      const ctl = c.op === 'truncate' ? undefined : this.tables.get(c.table)?.controls;
      return mapsRows(ctl) ? mapChange(ctl, c) : c;
    });
    const missing = await this.inner.apply(mapped, at);
    return missing.map((m) => {
      const ctl = this.tables.get(m.table)?.controls;
      return ctl ? { ...m, key: unmapImage(ctl, m.key) } : m;
    });
  }

  async upsert(table: string, rows: RowImage[]): Promise<void> {
    const t = this.tables.get(table);
    let keep = rows;
    if (t && filteredByFerry(t) && rows.length > 0) {
      const ok = await this.opts.filter!.matches(t, rows);
      keep = rows.filter((_, i) => ok[i]);
    }
    const ctl = t?.controls;
    await this.inner.upsert(table, mapsRows(ctl) ? keep.map((r) => mapImage(ctl, r)) : keep);
  }

  commit(position: Position): Promise<void> {
    return this.inner.commit(position);
  }

  rollback(): Promise<void> {
    return this.inner.rollback();
  }

  /** The row filter on inserts and updates of the tables the publication does not filter. */
  private async filter(changes: Change[]): Promise<Change[]> {
    if (!this.opts.filter) return changes;
    const asked = new Map<string, { t: TableSchema; rows: RowImage[]; at: number[] }>();
    changes.forEach((c, i) => {
      if (c.op !== 'insert' && c.op !== 'update') return;
      const t = this.tables.get(c.table);
      if (!t || !filteredByFerry(t)) return;
      if (c.op === 'update' && t.primaryKey.length === 0) return;
      // An update lacking a column the filter reads (unchanged TOAST) cannot be judged from its image.
      if (c.op === 'update' && mentionedColumns(t.controls!.where!, t.columns.map((x) => x.name)).some((col) => !(col in c.row))) return;
      const e = asked.get(c.table) ?? { t, rows: [], at: [] };
      e.rows.push(c.row);
      e.at.push(i);
      asked.set(c.table, e);
    });
    if (asked.size === 0) return changes;
    const verdict = new Map<number, boolean>();
    for (const e of asked.values()) {
      const ok = await this.opts.filter.matches(e.t, e.rows);
      e.at.forEach((i, j) => verdict.set(i, ok[j] === true));
    }
    const out: Change[] = [];
    changes.forEach((c, i) => {
      const v = verdict.get(i);
      if (v === undefined || c.op === 'delete' || c.op === 'truncate') return void out.push(c);
      if (c.op === 'insert') {
        if (v) out.push(c);
        return;
      }
      const t = this.tables.get(c.table)!;
      const keyOf = (r: RowImage) => Object.fromEntries(t.primaryKey.map((k) => [k, r[k] ?? null]));
      const moved = c.old !== null && t.primaryKey.some((k) => k in c.old! && c.old![k] !== c.row[k]);
      if (moved) out.push({ op: 'delete', table: c.table, old: keyOf(c.old!) });
      if (!v) return void out.push({ op: 'delete', table: c.table, old: keyOf(c.row) });
      // Matching: an upsert when the image is whole (the row may be new to the target), else the update itself.
      const whole = t.columns.filter((x) => !x.generated).every((x) => x.name in c.row);
      out.push(whole ? { op: 'insert', table: c.table, row: c.row } : c);
    });
    return out;
  }
}
