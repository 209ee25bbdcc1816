/**
 * The MongoDB meaning of the opaque range, cursor and chunk bounds: `[lower, upper)` of `_id` in the server's order,
 * each bound the canonical Extended JSON of an `_id` parsed to plain JSON (`{"$oid":"…"}`), null for unbounded. Pure.
 *
 * MongoDB's comparison operators match only values of the bound's own type ("type bracketing"): `{$gte: ObjectId}`
 * never matches a string `_id`. So ranges with bounds are planned only for collections whose `_id`s all share one
 * type; any other collection is one unbounded range read whole.
 */
import type { Document } from 'mongodb';
import { FerryError } from '../../core/errors.js';
import { fromCanonical, toCanonical } from '../../core/codec/ejson.js';
import type { Json } from '../../core/model.js';

/** `whole`: a collection whose `_id`s are of several types, read as one chunk (bounds would miss the other types). */
export type MongoRange = { kind: 'mongo-id'; lower: Json; upper: Json; whole?: boolean };

export function asMongoRange(v: Json): MongoRange {
  const r = v as MongoRange | null;
  if (r && typeof r === 'object' && r.kind === 'mongo-id') return r;
  throw new FerryError(`not a MongoDB _id range: ${JSON.stringify(v).slice(0, 200)}`);
}

/** An `_id` value as a bound (plain JSON of its canonical EJSON). */
export function idBound(id: unknown): Json {
  return JSON.parse(toCanonical(id)) as Json;
}

export function boundValue(b: Json): unknown {
  return fromCanonical(JSON.stringify(b));
}

/** A cursor is the `_id` the next chunk starts at (inclusive). */
export function withCursor(range: MongoRange, cursor: Json): MongoRange {
  return cursor === null ? range : { ...range, lower: cursor };
}

export function rangeFilter(r: MongoRange): Document {
  const cond: Document = {};
  if (r.lower !== null) cond.$gte = boundValue(r.lower);
  if (r.upper !== null) cond.$lt = boundValue(r.upper);
  return Object.keys(cond).length ? { _id: cond } : {};
}

export function rangeLabel(r: MongoRange): string {
  const show = (b: Json, inf: string) => (b === null ? inf : JSON.stringify(b));
  return `_id in [${show(r.lower, '-∞')}, ${show(r.upper, '∞')})`;
}

/** Boundaries from a sorted sample of `_id`s: every `step`-th, deduplicated, as ranges covering everything. */
export function rangesFromSample(sortedIds: unknown[], count: number): MongoRange[] {
  if (count <= 1 || sortedIds.length === 0) return [{ kind: 'mongo-id', lower: null, upper: null }];
  const step = sortedIds.length / count;
  const bounds: Json[] = [];
  for (let k = 1; k < count; k++) {
    const b = idBound(sortedIds[Math.floor(k * step)]);
    if (!bounds.length || JSON.stringify(bounds.at(-1)) !== JSON.stringify(b)) bounds.push(b);
  }
  const edges = [null, ...bounds, null];
  return edges.slice(0, -1).map((lower, i) => ({ kind: 'mongo-id', lower, upper: edges[i + 1]! }));
}
