/**
 * COPY text data for the rows of an apply: each value is the source's text form with backslash, tab, newline and CR
 * escaped, NULL as \N, columns separated by tabs. The bytes are what the snapshot's text COPY writes for the same row.
 *
 * This runs for every value of a bulk insert, in Ferry's process (which, on a loaded machine, shares the cores with
 * the target), so the per-row work is compiled once per column list: a function that reads each column by its
 * literal name and tests for characters to escape only the columns whose type's text form can hold one (`plain`
 * types, below, never print a backslash, tab, newline or CR).
 */
import type { TableSchema } from '../../../core/model.js';
import type { RowImage } from '../../../core/ports/change-source.js';

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_ESCAPE = /[\\\t\n\r]/g;
const escapeChar = (ch: string) => (ch === '\\' ? '\\\\' : ch === '\t' ? '\\t' : ch === '\n' ? '\\n' : '\\r');

/** One value in COPY text format (most values need no escaping: tested first). */
export function copyValue(v: string | null | undefined): string {
  if (v == null) return '\\N';
  return COPY_SPECIAL.test(v) ? v.replace(COPY_ESCAPE, escapeChar) : v;
}

/**
 * Built-in types whose text output is digits, signs, letters, spaces and punctuation other than a backslash (numbers,
 * booleans, dates and times, intervals, uuid): their values go into COPY as they are. Matched on format_type's
 * spelling, typmods allowed; anything else (text, json, arrays, domains, user types) is tested and escaped.
 */
const PLAIN = /^(smallint|integer|bigint|oid|real|double precision|boolean|date|uuid|numeric(\(\d+(,-?\d+)?\))?|(timestamp|time)(\(\d\))?( with(out)? time zone)?|interval( [a-z ]+)?(\(\d\))?)$/;

export function plainType(type: string): boolean {
  return PLAIN.test(type);
}

type LineFn = (row: RowImage) => string;
const compiled = new Map<string, LineFn>();

/** The COPY line builder for these columns of `table` (compiled once per table shape and column list). */
export function copyLineFn(table: TableSchema, columns: readonly string[]): LineFn {
  const types = new Map(table.columns.map((c) => [c.name, c.type]));
  const key = columns.map((c) => `${c}\u0000${types.get(c) ?? ''}`).join('\u0001');
  let fn = compiled.get(key);
  if (!fn) {
    // Names go in as JSON string literals, so any column name is safe inside the generated source.
    const parts = columns.map((c) => {
      const type = types.get(c);
      const read = `r[${JSON.stringify(c)}]`;
      return type !== undefined && plainType(type) ? `(${read} ?? '\\\\N')` : `esc(${read})`;
    });
    fn = new Function('esc', `return (r) => ${parts.join(" + '\\t' + ")} + '\\n';`)(copyValue) as LineFn;
    if (compiled.size > 1000) compiled.clear();
    compiled.set(key, fn);
  }
  return fn;
}

/** COPY text data for rows, in pieces of about `size` characters (one string per piece, no per-row array). */
export function* copyChunks(table: TableSchema, columns: readonly string[], rows: readonly RowImage[], size: number): Generator<string> {
  const line = copyLineFn(table, columns);
  let buf = '';
  for (let i = 0; i < rows.length; i++) {
    buf += line(rows[i]!);
    if (buf.length >= size) {
      yield buf;
      buf = '';
    }
  }
  if (buf) yield buf;
}
