/**
 * Cross-engine composition: a target of one engine dressed as a target for the other engine's source, with the codec
 * in between (NOTES.md: one codec per encoding pair, put in by the composition root). Only ports and codecs here.
 *
 * PostgreSQL source → MongoDB target (`pgRowsToMongo`, `pgChangesToMongo`):
 * - snapshot: COPY text rows become documents; PostgreSQL key bounds are not MongoDB `_id` ranges (text collations,
 *   type orders differ), so the target loads them by ordered upserts on `_id` (bounds `{ kind: 'foreign' }`): a
 *   repeated chunk rewrites the same documents. A table without a primary key has no `_id` to make that idempotent and
 *   is refused in preflight.
 * - changes: rows become documents (full-row upserts, deletes by `_id`); an update that lacks columns (an unchanged
 *   TOAST value) is returned as a missing row, so the streamer reads the whole current row from the source and
 *   upserts it.
 * MongoDB source → PostgreSQL target (`mongoRowsToPg`, `mongoChangesToPg`):
 * - every collection is a table `(_id text, doc jsonb)` (or declared columns); a chunk's `_id` bounds mean nothing to
 *   PostgreSQL, so the PostgreSQL writer gets bounds without a key range: like a keyless table's chunk, it is loaded
 *   exactly once under the job's progress-row lock, committed with its cursor.
 */
import { FerryError } from '../errors.js';
import { tableKey, type Json, type Position, type TableSchema } from '../model.js';
import type { Change, RowImage } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { RowStream, SequenceValue } from '../ports/source.js';
import type { CopyStats, RangeWriter, SnapshotTarget } from '../ports/target.js';
import { documentToImage, imageToDocument, MONGO_DOCS } from './ejson.js';
import { documentToPgRow, flattenDocument, pgTableForCollection, type FlattenMapping } from './mongo-to-pg.js';
import { pgRowToDocument } from './pg-to-mongo.js';
import { refuseUnmappable } from './pg-to-mongo-checks.js';
import { copiedColumnsOf } from './columns.js';
import { copyTextToDocuments, documentsToCopyText } from './row-streams.js';

const PG_COPY_TEXT = 'pg-copy-text';
/** Bounds a MongoDB target reads as "rows of another engine: upsert by `_id`, delete nothing first". */
export const FOREIGN_BOUNDS: Json = { kind: 'foreign' };
/** Bounds the PostgreSQL writer reads as "no key range to delete first" (its keyless-table path). */
const PG_NO_KEY_RANGE: Json = { kind: 'blocks', from: 0, to: null };

class MappedWriter implements RangeWriter {
  constructor(
    private readonly inner: RangeWriter,
    private readonly map: (bounds: Json, rows: RowStream) => { bounds: Json; rows: RowStream },
  ) {}
  get cursor() {
    return this.inner.cursor;
  }
  get done() {
    return this.inner.done;
  }
  get committed() {
    return this.inner.committed;
  }
  write(bounds: Json, rows: RowStream): Promise<CopyStats> {
    const m = this.map(bounds, rows);
    return this.inner.write(m.bounds, m.rows);
  }
  commit(next: Json) {
    return this.inner.commit(next);
  }
  release() {
    return this.inner.release();
  }
}

/**
 * What the bridged targets declare (the shape of h/ports' capabilities.ts; the port types there will check it): the
 * encoding of the source they take, no sequences (neither side maps them), no keyless tables, no savepoints.
 */
const snapshotCaps = (encoding: 'pg-text' | 'mongo-ejson') => ({ encodings: [encoding], sequences: false, keylessTables: false }) as const;
const changeCaps = (encoding: 'pg-text' | 'mongo-ejson') =>
  ({ encodings: [encoding], keylessReplay: false, savepoints: false, concurrentBatches: true, truncate: true }) as const;

/** A SnapshotTarget seen through a table mapping and a row-stream mapping. */
class MappedSnapshotTarget implements SnapshotTarget {
  constructor(
    readonly capabilities: ReturnType<typeof snapshotCaps>,
    private readonly inner: SnapshotTarget,
    readonly accepts: readonly string[],
    private readonly table: (t: TableSchema) => TableSchema,
    private readonly rows: (t: TableSchema, bounds: Json, rows: RowStream) => { bounds: Json; rows: RowStream },
    private readonly check: (tables: TableSchema[]) => void = () => {},
  ) {}
  async preflight(tables: TableSchema[], opts: { truncate: boolean; resuming: boolean }): Promise<void> {
    this.check(tables); // a refusal is a rejected promise, like the inner target's
    await this.inner.preflight(tables.map(this.table), opts);
  }
  createTables(flow: string, tables: TableSchema[]) {
    return this.inner.createTables(flow, tables.map(this.table));
  }
  async openRange(flow: string, jobId: string, table: TableSchema): Promise<RangeWriter> {
    const mapped = this.table(table);
    return new MappedWriter(await this.inner.openRange(flow, jobId, mapped), (b, r) => this.rows(table, b, r));
  }
  finalize(flow: string, tables: TableSchema[], sequences: SequenceValue[]) {
    return this.inner.finalize(flow, tables.map(this.table), sequences);
  }
  resetTable(table: TableSchema) {
    return this.inner.resetTable(this.table(table));
  }
  close() {
    return this.inner.close();
  }
}

/** A MongoDB SnapshotTarget that takes a PostgreSQL source's COPY text. */
export function pgRowsToMongo(mongo: SnapshotTarget): SnapshotTarget {
  return new MappedSnapshotTarget(
    snapshotCaps('pg-text'),
    mongo,
    [PG_COPY_TEXT],
    (t) => t,
    (t, _bounds, rows) => {
      if (rows.format !== PG_COPY_TEXT) throw new FerryError(`expected ${PG_COPY_TEXT} rows from the PostgreSQL source, got ${rows.format}`);
      return { bounds: FOREIGN_BOUNDS, rows: { format: MONGO_DOCS, stream: copyTextToDocuments(rows.stream, t) } };
    },
    // Keyless tables, array/jsonb keys, column names a document cannot carry: refused at plan time (pg-to-mongo-checks.ts).
    refuseUnmappable,
  );
}

/** A PostgreSQL SnapshotTarget that takes a MongoDB source's documents. */
export function mongoRowsToPg(pg: SnapshotTarget, mappings: Record<string, FlattenMapping> = {}): SnapshotTarget {
  return new MappedSnapshotTarget(
    snapshotCaps('mongo-ejson'),
    pg,
    [MONGO_DOCS],
    (t) => pgTableForCollection(t, mappings[tableKey(t.source)]),
    (t, _bounds, rows) => {
      if (rows.format !== MONGO_DOCS) throw new FerryError(`expected ${MONGO_DOCS} rows from the MongoDB source, got ${rows.format}`);
      return { bounds: PG_NO_KEY_RANGE, rows: { format: PG_COPY_TEXT, stream: documentsToCopyText(rows.stream, mappings[tableKey(t.source)]) } };
    },
  );
}

/** A ChangeTarget seen through a change mapping (which may turn some changes into rows to fetch). */
class MappedChangeTarget implements ChangeTarget {
  constructor(
    readonly capabilities: ReturnType<typeof changeCaps>,
    private readonly inner: ChangeTarget,
    private readonly table: (t: TableSchema) => TableSchema,
    private readonly change: (tables: Map<string, TableSchema>, c: Change) => Change | MissingRow,
    private readonly row: (t: TableSchema | undefined, r: RowImage) => RowImage,
    /** How the inner target stores positions (PostgreSQL's is a text column: a MongoDB position goes in as JSON text). */
    private readonly positions: { encode(p: Position): Position; decode(p: Position): Position } = { encode: (p) => p, decode: (p) => p },
  ) {}
  async appliedPosition(flow: string) {
    const p = await this.inner.appliedPosition(flow);
    return p === undefined ? undefined : this.positions.decode(p);
  }
  async begin(flow: string, tables: TableSchema[]): Promise<ApplyBatch> {
    const byKey = new Map(tables.map((t) => [tableKey(t.source), t]));
    const inner = await this.inner.begin(flow, tables.map(this.table));
    const self = this;
    const batch: ApplyBatch = {
      async apply(changes: Change[], at?: Position): Promise<MissingRow[]> {
        const missing: MissingRow[] = [];
        const mapped: Change[] = [];
        for (const c of changes) {
          const m = self.change(byKey, c);
          if ('key' in m) missing.push(m);
          else mapped.push(m);
        }
        return [...missing, ...(mapped.length ? await inner.apply(mapped, at) : [])];
      },
      upsert: (table, rows) => inner.upsert(table, rows.map((r) => self.row(byKey.get(table), r))),
      commit: (position) => inner.commit(self.positions.encode(position)),
      rollback: () => inner.rollback(),
      updateTables: (ts) => {
        for (const t of ts) byKey.set(tableKey(t.source), t);
        inner.updateTables?.(ts.map(self.table));
      },
    };
    return batch;
  }
  close() {
    return this.inner.close();
  }
}

/** PostgreSQL changes (pg-text) applied by a MongoDB ChangeTarget (mongo-ejson). */
export function pgChangesToMongo(mongo: ChangeTarget): ChangeTarget {
  const toImage = (t: TableSchema | undefined, r: RowImage): RowImage => {
    if (!t) throw new FerryError('a change of a table the flow does not know reached the MongoDB target');
    return documentToImage(pgRowToDocument(t, r));
  };
  const keyImage = (t: TableSchema, r: RowImage): RowImage => {
    const key: RowImage = {};
    for (const k of t.primaryKey) key[k] = r[k] ?? null;
    return { _id: documentToImage(pgRowToDocument(t, key))._id! };
  };
  return new MappedChangeTarget(
    changeCaps('pg-text'),
    mongo,
    (t) => t,
    (tables, c) => {
      if (c.op === 'truncate') return c;
      const t = tables.get(c.table);
      if (!t) throw new FerryError(`a change of ${c.table}, which the flow does not know, reached the MongoDB target`);
      if (c.op === 'delete') return { op: 'delete', table: c.table, old: keyImage(t, c.old) };
      if (c.op === 'update' && copiedColumnsOf(t).some((col) => !(col in c.row))) {
        // Unchanged TOAST columns are absent: the document cannot be replaced from this image. Fetch the row.
        const key: RowImage = {};
        for (const k of t.primaryKey) key[k] = c.row[k] ?? null;
        return { table: c.table, key };
      }
      const row = toImage(t, c.row);
      if (c.op === 'insert') return { op: 'insert', table: c.table, row };
      const old = c.old ? keyImage(t, c.old) : null;
      return { op: 'update', table: c.table, row, old: old && old._id !== row._id ? old : null };
    },
    toImage,
  );
}

/** MongoDB changes (mongo-ejson) applied by a PostgreSQL ChangeTarget to `(_id, doc)` tables (or declared columns). */
export function mongoChangesToPg(pg: ChangeTarget, mappings: Record<string, FlattenMapping> = {}): ChangeTarget {
  const toRow = (t: TableSchema | undefined, r: RowImage): RowImage => {
    const doc = imageToDocument(r);
    const m = t ? mappings[tableKey(t.source)] : undefined;
    return m ? flattenDocument(doc, m) : documentToPgRow(doc);
  };
  return new MappedChangeTarget(
    changeCaps('mongo-ejson'),
    pg,
    (t) => pgTableForCollection(t, mappings[tableKey(t.source)]),
    (tables, c) => {
      if (c.op === 'truncate') return c;
      // The PostgreSQL `_id` column holds the canonical EJSON of `_id`: the image's own `_id` text.
      if (c.op === 'delete') return { op: 'delete', table: c.table, old: { _id: c.old._id ?? null } };
      const row = toRow(tables.get(c.table), c.row);
      // A MongoDB update carries the whole document: an insert, which the PostgreSQL target applies as an upsert.
      return { op: 'insert', table: c.table, row };
    },
    toRow,
    { encode: (p) => JSON.stringify(p), decode: (p) => (typeof p === 'string' && p.startsWith('{') ? (JSON.parse(p) as Position) : p) },
  );
}
