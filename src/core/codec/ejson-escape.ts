/**
 * Extended JSON cannot tell a document whose field is named `$oid` (or `$date`, `$numberLong`, `$ref` + `$id`,
 * `$undefined`, …) from the BSON value that wrapper spells: `EJSON.parse('{"$oid":"65f0…"}')` is an ObjectId. Such
 * documents are legal user data (a PostgreSQL jsonb value; a MongoDB 5.0+ document with `$`-prefixed nested fields),
 * so the `mongo-ejson` RowImage encoding must not print them as plain EJSON, or a change would arrive as another type
 * than the snapshot copied (issue 11, pgmongo).
 *
 * The escape: a value that holds a plain object with a `$`-prefixed key anywhere (through arrays, a Code's scope, a
 * DBRef's fields) is printed as `~` + the canonical EJSON of the same value with every plain object's keys prefixed
 * by `~`. No key of a plain object then starts with `$`, so the parser builds BSON types only from the wrappers that
 * BSON values print themselves; the prefixes are then stripped, key order kept. `~` cannot start canonical EJSON
 * text (an object, array, string, `true`/`false`/`null`), so the two forms never collide. Values without such keys
 * (nearly all) keep the plain canonical text, unchanged from before.
 *
 * Also exact for a key `__proto__`: objects are rebuilt with defineProperty, never by assignment.
 */
import { EJSON, type Document } from 'bson';

const MARK = '~';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function bsonType(v: unknown): string | undefined {
  return v !== null && typeof v === 'object' ? ((v as { _bsontype?: string })._bsontype ?? undefined) : undefined;
}

/** Does EJSON text of `v` risk being read back as another type? (a plain object with a `$`-prefixed key inside) */
export function needsEscape(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(needsEscape);
  if (isPlainObject(v)) {
    for (const k of Object.keys(v)) if (k.startsWith('$') || needsEscape(v[k])) return true;
    return false;
  }
  const t = bsonType(v);
  if (t === 'Code') return needsEscape((v as { scope?: unknown }).scope ?? null);
  if (t === 'DBRef') {
    const r = v as { oid: unknown; fields: unknown };
    return needsEscape(r.oid) || needsEscape(r.fields);
  }
  return false;
}

function define(out: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
}

/** Every plain object's keys with `~` in front (`dir` 1), or without it again (`dir` -1). BSON values copied as they are. */
function rekey(v: unknown, dir: 1 | -1): unknown {
  if (Array.isArray(v)) return v.map((e) => rekey(e, dir));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v)) define(out, dir === 1 ? MARK + k : k.slice(MARK.length), rekey(v[k], dir));
    return out;
  }
  const t = bsonType(v);
  if (t === 'Code') {
    const c = v as { code: string; scope?: Document | null; constructor: new (code: string, scope?: Document | null) => unknown };
    return c.scope ? new c.constructor(c.code, rekey(c.scope, dir) as Document) : v;
  }
  if (t === 'DBRef') {
    const r = v as { collection: string; oid: unknown; db?: string; fields: Document; constructor: new (c: string, o: unknown, d?: string, f?: Document) => unknown };
    return new r.constructor(r.collection, rekey(r.oid, dir), r.db, rekey(r.fields, dir) as Document);
  }
  return v;
}

/** One BSON value as `mongo-ejson` image text: canonical Extended JSON, escaped when it would be read back as another type. */
export function valueToImageText(v: unknown): string {
  if (!needsEscape(v)) return EJSON.stringify(v as Document, { relaxed: false });
  return MARK + EJSON.stringify(rekey(v, 1) as Document, { relaxed: false });
}

/** `valueToImageText` back to the BSON value, types and key order kept. */
export function imageTextToValue(text: string): unknown {
  if (!text.startsWith(MARK)) return EJSON.parse(text, { relaxed: false });
  return rekey(EJSON.parse(text.slice(MARK.length), { relaxed: false }), -1);
}
