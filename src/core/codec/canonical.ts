/**
 * The canonical forms `ferry verify` hashes when source and target are of different engines. Each pair has one form,
 * defined through the codec that copies its data, and computed on both sides from what each side holds, so equal data
 * gives equal digests and any changed value, missing or extra row a different one:
 *
 * - PostgreSQL → MongoDB (`CANONICAL_DOC_KIND`): the document the codec maps the row to (pgRowToDocument), and on
 *   the MongoDB side the stored document read back with EXACT_BSON, both printed as canonical Extended JSON v2 with
 *   the keys of every (sub-)document sorted (arrays keep their order). Canonical EJSON names every BSON type, so an
 *   Int32, an Int64 and a Double holding 1 differ; sorting the keys makes the form independent of field order (jsonb
 *   keeps none, so the codec's embedded documents have no order of their own to compare).
 * - MongoDB → PostgreSQL (`CANONICAL_ROW_KIND`): the row the codec maps the document to (`(_id, doc)` or the declared
 *   columns), and on the PostgreSQL side the table's row as PostgreSQL prints it, each value normalized by its column
 *   type (`normalizePgValue`: jsonb/json parsed and printed with sorted keys, numbers by value, timestamps as the
 *   instant, booleans as t/f, hex in lower case), then the values as a JSON array in column order.
 *
 * A range's digest is the number of rows and the sum modulo 2^128 of each row's MD5 over its form (the same
 * order-free sum as the MongoDB → MongoDB kind), so the two sides may read their rows in any order. Pure: `bson` is a
 * serialization library, not a driver.
 */
import { createHash } from 'node:crypto';
import type { Document } from 'bson';
import type { TableSchema } from '../model.js';
import type { RowImage } from '../ports/change-source.js';
import { toCanonical } from './ejson.js';
import { documentToPgRow, flattenDocument, type FlattenMapping } from './mongo-to-pg.js';
import { columnKind, parsePgTimestamp, pgRowToDocument } from './pg-to-mongo.js';

/** PostgreSQL → MongoDB: documents as sorted canonical Extended JSON, MD5 summed modulo 2^128. */
export const CANONICAL_DOC_KIND = 'xe-doc-sorted-ejson-md5-sum128';
/** MongoDB → PostgreSQL: the codec's row, values normalized by column type, MD5 summed modulo 2^128. */
export const CANONICAL_ROW_KIND = 'xe-pgrow-normalized-md5-sum128';

const MOD = 1n << 128n;

/** Count and order-free digest of canonical texts. */
export class CanonicalDigest {
  rows = 0;
  private sum = 0n;
  add(form: string): void {
    this.rows++;
    this.sum = (this.sum + BigInt(`0x${createHash('md5').update(form).digest('hex')}`)) % MOD;
  }
  get hash(): string {
    return this.sum.toString(16).padStart(32, '0');
  }
  result(): { rows: number; hash: string } {
    return { rows: this.rows, hash: this.hash };
  }
}

/** JSON text with the keys of every object sorted (by UTF-16 code units: the same on every machine). */
export function sortedJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

/**
 * A BSON value as canonical Extended JSON with sorted keys. The canonical text has no bare JSON numbers except the
 * uint32 parts of a `$timestamp`, so parsing it as JSON loses nothing.
 */
export function sortedCanonical(value: unknown): string {
  return sortedJson(JSON.parse(toCanonical(value)));
}

/** PostgreSQL → MongoDB, PostgreSQL side: the form of a row (text images of the table's copied columns). */
export function pgRowDocForm(table: Pick<TableSchema, 'columns' | 'primaryKey'>, row: RowImage): string {
  return sortedCanonical(pgRowToDocument(table, row));
}

/** PostgreSQL → MongoDB, MongoDB side (and any document): the form of a stored document. */
export function documentForm(doc: Document): string {
  return sortedCanonical(doc);
}

/** sign, significant digits and exponent of a decimal text: equal exactly when the values are. */
function decimalValue(t: string): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return t;
  const digits = `${m[2] ?? ''}${m[3] ?? ''}`;
  let exp = BigInt(m[4] ?? 0) - BigInt(m[3]?.length ?? 0);
  let d = digits.replace(/^0+/, '');
  if (d === '') return '0';
  const kept = d.replace(/0+$/, '');
  exp += BigInt(d.length - kept.length);
  d = kept;
  return `${m[1] === '-' ? '-' : ''}${d}e${exp}`;
}

/**
 * A PostgreSQL text value normalized by its column type, so that the codec's text for a value and PostgreSQL's own
 * print of the value it stored compare equal exactly when the values are (`1.50` and `1.500` in a numeric column,
 * `…05.678+00` and `…05.678` in a timestamp column, a jsonb's key order and spacing). Text the type does not parse is
 * kept as it is (then it differs, as the values do).
 */
export function normalizePgValue(type: string, text: string | null): string | null {
  if (text === null) return null;
  const kind = columnKind({ type });
  if (kind.array) return text;
  switch (kind.scalar) {
    case 'int32':
    case 'int64':
      return /^[+-]?\d+$/.test(text.trim()) ? BigInt(text.trim()).toString() : text;
    case 'double': {
      const n = Number(text);
      if (Number.isNaN(n)) return text.trim() === 'NaN' ? 'NaN' : text;
      return Object.is(n, -0) ? '-0' : String(n);
    }
    case 'numeric':
      return /^[+-]?(NaN|Infinity)$/i.test(text.trim()) ? text.trim().replace(/^\+/, '') : decimalValue(text);
    case 'bool':
      return ['t', 'true', 'y', 'yes', 'on', '1'].includes(text.trim().toLowerCase()) ? 't' : ['f', 'false', 'n', 'no', 'off', '0'].includes(text.trim().toLowerCase()) ? 'f' : text;
    case 'timestamptz':
    case 'timestamp':
    case 'date': {
      const t = parsePgTimestamp(text);
      return t ? `@${t.ms}.${String(t.micros).padStart(3, '0')}` : text;
    }
    case 'jsonb':
    case 'json':
      try {
        return sortedJson(JSON.parse(text));
      } catch {
        return text;
      }
    case 'uuid':
    case 'bytea':
      return text.toLowerCase();
    default:
      return text;
  }
}

/** MongoDB → PostgreSQL: the form of a row of `pgTable` (the table the codec made for the collection). */
export function pgRowForm(pgTable: Pick<TableSchema, 'columns'>, row: RowImage): string {
  return JSON.stringify(pgTable.columns.map((c) => normalizePgValue(c.type, row[c.name] ?? null)));
}

/** MongoDB → PostgreSQL, MongoDB side: the form of the row the codec maps a document to. */
export function documentRowForm(pgTable: Pick<TableSchema, 'columns'>, doc: Document, mapping?: FlattenMapping): string {
  return pgRowForm(pgTable, mapping ? flattenDocument(doc, mapping) : documentToPgRow(doc));
}
