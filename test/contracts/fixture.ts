/**
 * The logical data every port contract suite works on, and what an engine's harness provides to express it.
 *
 * A contract table holds rows `{ id, v }`: an integer key and a nullable text value. Each engine maps that to its
 * own shape (PostgreSQL: `id int PRIMARY KEY, v text`; MongoDB: `{ _id: <int>, v: <string|null> }`) and to its own
 * value encoding (`pg-text`: `'1'`, `'x'`; `mongo-ejson`: `'{"$numberInt":"1"}'`, `'"x"'`). The suites only ever
 * compare rows decoded back through the harness, so they hold for every engine; what differs between engines is
 * declared in capabilities, and the suites test each declaration (on or off).
 */
import type { TableSchema } from '../../src/core/model.js';
import type { RowImage } from '../../src/core/ports/change-source.js';
import type { RowStream, Selection } from '../../src/core/ports/source.js';

export interface Row {
  id: number;
  v: string | null;
}

/** One write on the source; a list of them is one source transaction. */
export type Write =
  | { op: 'insert'; table: string; rows: Row[] }
  | { op: 'update'; table: string; ids: number[]; v: string | null }
  | { op: 'delete'; table: string; ids: number[] }
  | { op: 'truncate'; table: string };

export interface TableOptions {
  /** No key (PostgreSQL: no primary key, REPLICA IDENTITY FULL). Used only where a capability says keyless works. */
  keyless?: boolean;
  /**
   * The key is fed by a sequence (PostgreSQL: `serial`), which `create` advances past the rows it inserts; used only
   * where `sequences` is declared.
   */
  sequence?: boolean;
}

/** Value encoding of one engine: building and reading row images of contract rows. */
export interface RowImages {
  /** The full image of a row. */
  image(row: Row): RowImage;
  /** The key-only image of a row (what a delete or key lookup carries at least). */
  key(id: number): RowImage;
  /** Decode an image (full or partial): fields absent from it are absent from the result. */
  decode(image: RowImage): Partial<Row>;
}

/** Writes and reads on a database of the engine under test, outside the adapter (the oracle's side). */
export interface EngineFixture extends RowImages {
  /** Create table `name` (replacing any), holding `rows`, statistics up to date. */
  create(name: string, rows: Row[], opts?: TableOptions): Promise<void>;
  /** Run writes as one transaction. */
  write(writes: Write[]): Promise<void>;
  /** The rows of table `name`, ordered by id. */
  rows(name: string): Promise<Row[]>;
  /** The selection of these contract tables. */
  selection(names: string[]): Selection;
  /** The ports' key of table `name` (`schema.name`). */
  tableKey(name: string): string;
}

/** Reads a RowStream of contract rows back into rows (for the formats the harness understands). */
export interface RowStreamCodecForTests {
  /** Formats `decodeStream` reads and `encodeStream` writes, best first. */
  formats: readonly string[];
  decodeStream(table: TableSchema, rows: RowStream): Promise<Row[]>;
  encodeStream(table: TableSchema, rows: Row[], format: string): RowStream;
}

export const byId = (a: Row, b: Row) => a.id - b.id;

/** Rows 1..n (or from..to) with `v` = `v<id>`. */
export function rowsFrom(from: number, to: number, v = (id: number) => `v${id}`): Row[] {
  const out: Row[] = [];
  for (let id = from; id <= to; id++) out.push({ id, v: v(id) });
  return out;
}

let seq = 0;
/** A name unique in this process, usable as a table or flow name on every engine (lowercase, no dots). */
export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${++seq}`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a value other than undefined, or fail after `ms`. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 20_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
