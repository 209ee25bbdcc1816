/**
 * The MongoDB meaning of the opaque range, cursor and chunk bounds: `[lower, upper)` of `_id` in the server's order,
 * each bound the canonical Extended JSON of an `_id` parsed to plain JSON (`{"$oid":"…"}`), null for unbounded. Pure.
 *
 * MongoDB's comparison operators match only values of the bound's own type ("type bracketing"): `{$gte: ObjectId}`
 * never matches a string `_id`. So a collection whose `_id`s are of several types is planned as one range per
 * comparison bracket present (`types`: the `$type` aliases of the bracket, which the bounds and cursors of its chunks
 * then stay inside), plus one range of every other type (`notTypes`, read whole: normally empty), so that every
 * document is in exactly one range, and each range is still copied in committed chunks.
 * https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/
 */
import type { Document } from 'mongodb';
import { FerryError } from '../../core/errors.js';
import { fromCanonical, toCanonical } from '../../core/codec/ejson.js';
import type { Json } from '../../core/model.js';

/**
 * `types`: only `_id`s of these `$type` aliases (one comparison bracket); `notTypes`: of none of them. `whole`: read
 * as one chunk (a range with `notTypes`, or a mixed-type collection planned before typed ranges existed).
 */
export type MongoRange = { kind: 'mongo-id'; lower: Json; upper: Json; whole?: boolean; types?: string[]; notTypes?: string[] };

/** The comparison brackets an `_id` can be in, in MongoDB's sort order, as `$type` aliases (arrays are no `_id`). */
export const ID_BRACKETS: { name: string; types: string[] }[] = [
  { name: 'minKey', types: ['minKey'] },
  { name: 'null', types: ['null'] },
  { name: 'number', types: ['double', 'int', 'long', 'decimal'] },
  { name: 'string', types: ['string', 'symbol'] },
  { name: 'object', types: ['object'] },
  { name: 'binData', types: ['binData'] },
  { name: 'objectId', types: ['objectId'] },
  { name: 'bool', types: ['bool'] },
  { name: 'date', types: ['date'] },
  { name: 'timestamp', types: ['timestamp'] },
  { name: 'regex', types: ['regex'] },
  { name: 'maxKey', types: ['maxKey'] },
];

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
  if (r.types?.length) cond.$type = r.types;
  if (r.notTypes?.length) cond.$not = { $type: r.notTypes };
  if (r.lower !== null) cond.$gte = boundValue(r.lower);
  if (r.upper !== null) cond.$lt = boundValue(r.upper);
  return Object.keys(cond).length ? { _id: cond } : {};
}

export function rangeLabel(r: MongoRange): string {
  const show = (b: Json, inf: string) => (b === null ? inf : JSON.stringify(b));
  const of = r.types?.length ? ` of type ${r.types.join('/')}` : r.notTypes?.length ? ' of any other type' : '';
  return `_id${of} in [${show(r.lower, '-∞')}, ${show(r.upper, '∞')})`;
}

/** The ranges of a collection with `_id`s of several types: one per bracket present, then every other type. */
export function typedRanges(present: string[]): MongoRange[] {
  const out: MongoRange[] = ID_BRACKETS.filter((b) => present.includes(b.name)).map((b) => ({ kind: 'mongo-id', lower: null, upper: null, types: b.types }));
  out.push({ kind: 'mongo-id', lower: null, upper: null, whole: true, notTypes: ID_BRACKETS.flatMap((b) => b.types) });
  return out;
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
