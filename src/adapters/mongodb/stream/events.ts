/**
 * One change event document, as the server sends it, to Ferry's engine-neutral Change (values as canonical Extended
 * JSON per top-level field, the `mongo-ejson` encoding). Pure. Shapes:
 * https://www.mongodb.com/docs/manual/reference/change-events/
 *
 * Every change converges when replayed over a newer snapshot or applied twice:
 * - insert, replace, and update (with its full document: `updateLookup` or a post-image) become an upsert of the
 *   whole document by `_id` (`insert` for an insert, `update` with `old: null` otherwise);
 * - an update whose looked-up document is null (it was deleted after the update) is skipped: the delete follows;
 * - delete becomes a delete by `_id`.
 * drop, rename (from or onto a selected collection), dropDatabase and invalidate of a selected collection stop the
 * stream with an error naming it. Other
 * events (DDL with showExpandedEvents, collections outside the flow) are skipped.
 */
import type { Document } from 'bson';
import type { Change } from '../../../core/ports/change-source.js';
import { documentToImage, toCanonical } from '../../../core/codec/ejson.js';
import { CollectionGoneError } from './errors.js';

export type Converted =
  | { kind: 'change'; change: Change }
  | { kind: 'skip'; reason: string };

export interface EventContext {
  /** Selected collections as `db.coll` (source table keys). */
  selected: ReadonlySet<string>;
}

function nsKey(ns: unknown): string | undefined {
  const n = ns as { db?: unknown; coll?: unknown } | undefined;
  if (!n || typeof n.db !== 'string') return undefined;
  return typeof n.coll === 'string' ? `${n.db}.${n.coll}` : n.db;
}

/** The transaction an event belongs to (lsid + txnNumber), or undefined outside a multi-document transaction. */
export function transactionOf(event: Document): string | undefined {
  if (event.txnNumber === undefined || event.lsid === undefined) return undefined;
  return `${toCanonical(event.lsid)}#${toCanonical(event.txnNumber)}`;
}

export function convertEvent(event: Document, ctx: EventContext): Converted {
  const op = String(event.operationType);
  const table = nsKey(event.ns);
  if (op === 'invalidate') {
    // A collection stream invalidated by a drop or rename, or a database one by dropDatabase; the drop/rename
    // event itself came just before and named the collection.
    throw new CollectionGoneError(table ?? '(the watched collection)', 'was dropped or renamed (the change stream was invalidated)');
  }
  if (op === 'dropDatabase') {
    const db = (event.ns as { db?: string } | undefined)?.db ?? '';
    const hit = [...ctx.selected].filter((k) => k.startsWith(`${db}.`));
    if (hit.length) throw new CollectionGoneError(hit.join(', '), `was dropped with its database ${db}`);
    return { kind: 'skip', reason: `database ${db} is not part of the flow` };
  }
  if (op === 'rename') {
    // Onto a selected collection: `renameCollection` with dropTarget, or an aggregation's `$out` (which writes a
    // temporary collection and renames it over the target). The selected collection's documents were replaced
    // wholesale, with no event per document: the flow cannot follow that.
    const to = nsKey(event.to);
    if (to !== undefined && ctx.selected.has(to) && to !== table) {
      throw new CollectionGoneError(to, `was replaced by ${table ?? 'another collection'} renamed onto it (renameCollection with dropTarget, or an aggregation's $out)`);
    }
  }
  if (table === undefined || !ctx.selected.has(table)) return { kind: 'skip', reason: `${table ?? '?'} is not part of the flow` };
  switch (op) {
    case 'insert':
      return { kind: 'change', change: { op: 'insert', table, row: documentToImage(event.fullDocument as Document) } };
    case 'replace':
    case 'update': {
      const full = event.fullDocument as Document | null | undefined;
      if (full === null) return { kind: 'skip', reason: 'the document was deleted after this update (its delete follows)' };
      if (full === undefined) {
        throw new Error(`an ${op} event of ${table} came without its full document: the stream must be opened with fullDocument updateLookup or required`);
      }
      return { kind: 'change', change: { op: 'update', table, row: documentToImage(full), old: null } };
    }
    case 'delete': {
      const key = event.documentKey as Document;
      return { kind: 'change', change: { op: 'delete', table, old: { _id: toCanonical(key._id) } } };
    }
    case 'drop':
      throw new CollectionGoneError(table, 'was dropped');
    case 'rename': {
      const to = nsKey(event.to);
      throw new CollectionGoneError(table, `was renamed to ${to ?? '?'}`);
    }
    default:
      return { kind: 'skip', reason: `${op} events carry no document change` };
  }
}
