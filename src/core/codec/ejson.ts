/**
 * BSON values as text, exactly: canonical Extended JSON v2 (the `mongo-ejson` value encoding of NOTES.md). Canonical,
 * never relaxed: relaxed EJSON prints an Int32, an Int64 and a Double that hold 1 all as `1`, and reads them back as
 * one JavaScript number, so a type would be lost at every hop.
 *
 * Documents read from the server must be deserialized with `EXACT_BSON`: with the driver's defaults (promoteValues)
 * a Double 1.0 becomes the number 1 and would print as `{"$numberInt":"1"}`.
 *
 * `bson` is a serialization library, not a driver: the core may use it (it never opens a connection).
 */
import { BSON, EJSON, type Document } from 'bson';
import type { RowImage } from '../ports/change-source.js';
import { imageTextToValue, valueToImageText } from './ejson-escape.js';

export const MONGO_EJSON = 'mongo-ejson';
/** Snapshot row format of a MongoDB source: an object-mode stream of documents deserialized with EXACT_BSON. */
export const MONGO_DOCS = 'mongo-bson-docs';

/** Deserialize options that keep every BSON type as its own class (Int32, Double, Long, Binary, BSONRegExp). */
export const EXACT_BSON: BSON.DeserializeOptions = {
  promoteValues: false,
  promoteLongs: false,
  promoteBuffers: false,
  bsonRegExp: true,
};

/** A BSON value (or document) as canonical Extended JSON text. */
export function toCanonical(value: unknown): string {
  return EJSON.stringify(value as Document, { relaxed: false });
}

/** Canonical (or relaxed) Extended JSON text back to BSON values, types kept (`$numberInt` stays an Int32). */
export function fromCanonical(text: string): unknown {
  return EJSON.parse(text, { relaxed: false });
}

/**
 * A document as a RowImage: each top-level field's canonical EJSON, in the document's field order. A value holding a
 * sub-document with a `$`-prefixed key (`{"$oid": …}` as data) is escaped (ejson-escape.ts), so it is read back as
 * that sub-document and not as the type its keys spell.
 */
export function documentToImage(doc: Document): RowImage {
  const out: RowImage = {};
  for (const k of Object.keys(doc)) Object.defineProperty(out, k, { value: valueToImageText(doc[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * A RowImage of `mongo-ejson` values back to a document, in the image's field order. A null value is BSON null (a
 * RowImage cannot say "absent" other than by leaving the field out, which is what an absent field is).
 */
export function imageToDocument(image: RowImage): Document {
  const out: Document = {};
  // defineProperty: a field named `__proto__` stays a field.
  for (const [k, v] of Object.entries(image)) Object.defineProperty(out, k, { value: v === null ? null : imageTextToValue(v), enumerable: true, writable: true, configurable: true });
  return out;
}

/** Byte-exact round trip through BSON: serialize, deserialize with EXACT_BSON. */
export function bsonRoundTrip(doc: Document): Document {
  return BSON.deserialize(BSON.serialize(doc), EXACT_BSON);
}
