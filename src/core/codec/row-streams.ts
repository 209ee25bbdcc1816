/**
 * Snapshot row streams between engines, without holding a range in memory: PostgreSQL COPY text to MongoDB
 * documents (object mode) and documents to COPY text. Each is a stream transform with backpressure.
 */
import { Readable, Transform } from 'node:stream';
import type { Document } from 'bson';
import type { TableSchema } from '../model.js';
import type { RowImage } from '../ports/change-source.js';
import { copiedColumnsOf } from './columns.js';
import { documentToPgRow, flattenDocument, type FlattenMapping } from './mongo-to-pg.js';
import { pgRowToDocument } from './pg-to-mongo.js';
import { parseCopyTextLine } from './pg-text.js';

/** Splits a byte stream into lines at `\n` bytes (data newlines are escaped in COPY text), decoding each as UTF-8. */
function lineSplitter(onLine: (line: string, push: (v: unknown) => void) => void): Transform {
  let rest: Buffer = Buffer.alloc(0);
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _enc, done) {
      try {
        let buf = rest.length ? Buffer.concat([rest, chunk]) : chunk;
        let nl: number;
        while ((nl = buf.indexOf(10)) >= 0) {
          onLine(buf.subarray(0, nl).toString('utf8'), (v) => this.push(v));
          buf = buf.subarray(nl + 1);
        }
        rest = Buffer.from(buf);
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    flush(done) {
      try {
        if (rest.length) onLine(rest.toString('utf8'), (v) => this.push(v));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}

/** pg-copy-text rows of `table` (columns in table order, generated ones left out) to documents. */
export function copyTextToDocuments(input: Readable, table: TableSchema): Readable {
  const cols = copiedColumnsOf(table);
  const out = lineSplitter((line, push) => {
    const fields = parseCopyTextLine(line);
    const row: RowImage = {};
    cols.forEach((c, i) => (row[c] = fields[i] ?? null));
    push(pgRowToDocument(table, row));
  });
  input.on('error', (err) => out.destroy(err));
  return input.pipe(out);
}

/** pg-copy-text rows of the given columns to row images (object mode), for cross-engine verify. */
export function copyTextToRows(input: Readable, columns: readonly string[]): Readable {
  const out = lineSplitter((line, push) => {
    const fields = parseCopyTextLine(line);
    const row: RowImage = {};
    columns.forEach((c, i) => (row[c] = fields[i] ?? null));
    push(row);
  });
  input.on('error', (err) => out.destroy(err));
  return input.pipe(out);
}

/** A text value escaped for COPY text format. */
export function copyEscape(v: string | null): string {
  if (v === null) return '\\N';
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t');
}

/** Documents (object mode) to pg-copy-text rows of the default `(_id, doc)` table or of a declared mapping. */
export function documentsToCopyText(input: Readable, mapping?: FlattenMapping): Readable {
  const out = new Transform({
    writableObjectMode: true,
    transform(doc: Document, _enc, done) {
      try {
        const row = mapping ? flattenDocument(doc, mapping) : documentToPgRow(doc);
        done(null, `${Object.values(row).map(copyEscape).join('\t')}\n`);
      } catch (err) {
        done(err as Error);
      }
    },
  });
  input.on('error', (err) => out.destroy(err));
  return input.pipe(out);
}
