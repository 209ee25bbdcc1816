/**
 * PostgreSQL indexes and unique constraints to MongoDB index specs, for a PostgreSQL → MongoDB flow. Pure: it reads
 * the definitions the PostgreSQL source recorded in the plan (`TableSchema.extra.indexes` / `.constraints`, the text
 * of pg_get_indexdef / pg_get_constraintdef) and returns plain JSON specs and a warning per index it does not build.
 * The MongoDB target builds the specs at finalize, after the load (snapshot-target.ts).
 *
 * Built: btree indexes and UNIQUE constraints over plain columns, in the document's field names (the key column
 * alone is `_id`, already indexed; a composite key's columns are `_id.<col>`), ascending or descending, unique kept.
 * - A timestamp column is followed by its `<col>__micros` field (same direction): the document keeps sub-millisecond
 *   digits there, so a unique index over the Date alone would refuse rows PostgreSQL holds as distinct.
 * - PostgreSQL unique indexes let NULLs repeat (unless NULLS NOT DISTINCT); a MongoDB unique index treats null as a
 *   value. So a unique index over nullable columns is partial, indexing only documents whose columns are all
 *   non-null (`$type` of the BSON type(s) the column maps to): the same rows PostgreSQL checks.
 * - A partial index (`WHERE …`) is built when its predicate is a conjunction of `col IS NOT NULL`, a boolean column
 *   or its NOT, and `col = / < / <= / > / >= literal` (numbers on number columns, strings on text columns,
 *   booleans); anything else is skipped with a warning.
 * - A DEFERRABLE unique constraint is built without `unique` (MongoDB checks every write at once; a transaction that
 *   passes through a duplicate would stop the stream), with a warning.
 * Skipped with a warning naming the index and why: other access methods (hash, gin, gist, brin, spgist), expression
 * indexes, columns of array or json(b) type (MongoDB would index each array element), field names with `.` or a
 * leading `$`, exclusion constraints, and columns the table does not have (an excluded one). INCLUDE columns are
 * dropped (MongoDB has no non-key index columns). Orderings (NULLS FIRST/LAST, COLLATE, operator classes) are not
 * carried: MongoDB sorts by BSON order, binary strings. A nondeterministic collation's uniqueness becomes byte-wise.
 */
import type { Json, TableSchema } from '../model.js';
import { columnKind, MICROS_SUFFIX, type ColumnKind } from './pg-to-mongo.js';

/** A MongoDB index as plain JSON (the plan's currency); `key` in order, as [field, direction] pairs. */
export interface MongoIndexSpec {
  name: string;
  key: [string, 1 | -1][];
  unique?: true;
  partialFilterExpression?: { [k: string]: Json };
}

/** What the PostgreSQL source records in `extra` (src/adapters/postgres/extra.ts), read structurally. */
type PgIndexFact = { name: string; using: string; unique: boolean };
type PgConstraintFact = { name: string; type: string; definition: string };

/** The BSON type names (`$type`) a column's non-null values have, per pg-to-mongo.ts; undefined when too many. */
function bsonTypesOf(kind: ColumnKind): string[] | undefined {
  if (kind.array) return undefined;
  switch (kind.scalar) {
    case 'int32': return ['int'];
    case 'int64': return ['long'];
    case 'double': return ['double'];
    case 'numeric': return ['decimal', 'string']; // more than 34 digits: the text
    case 'bool': return ['bool'];
    case 'bytea':
    case 'uuid': return ['binData'];
    case 'timestamptz':
    case 'timestamp':
    case 'date': return ['date', 'string']; // ±infinity, out-of-range years: the text
    case 'jsonb': return undefined;
    default: return ['string']; // text, json, and every type kept as its text
  }
}

const typeFilter = (types: string[]): Json => ({ $type: types.length === 1 ? types[0]! : types });

/** Splits at top-level commas, outside quotes and parentheses. */
function splitTopLevel(s: string, sep = ','): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = s[i + 1] === quote ? (i++, quote) : null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      out.push(s.slice(start, i).trim());
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  out.push(s.slice(start).trim());
  return out;
}

/** The text inside the parenthesis that opens at `open`, and the index after its closing one. */
function parenthesized(s: string, open: number): { inner: string; end: number } | undefined {
  let depth = 0;
  let quote: string | null = null;
  for (let i = open; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = s[i + 1] === quote ? (i++, quote) : null;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return { inner: s.slice(open + 1, i), end: i + 1 };
  }
  return undefined;
}

/** A leading identifier as quote_ident prints it, and what follows; undefined when the text starts otherwise. */
function identifier(s: string): { name: string; rest: string } | undefined {
  if (s.startsWith('"')) {
    let i = 1;
    let name = '';
    for (; i < s.length; i++) {
      if (s[i] === '"') {
        if (s[i + 1] === '"') (name += '"'), i++;
        else break;
      } else name += s[i];
    }
    return { name, rest: s.slice(i + 1).trim() };
  }
  const m = /^[a-z_][a-z0-9_$]*/.exec(s);
  return m ? { name: m[0], rest: s.slice(m[0].length).trim() } : undefined;
}

const stripParens = (s: string): string => {
  let t = s.trim();
  while (t.startsWith('(')) {
    const p = parenthesized(t, 0);
    if (!p || p.end !== t.length) break;
    t = p.inner.trim();
  }
  return t;
};

interface Ctx {
  table: Pick<TableSchema, 'columns' | 'primaryKey'>;
  label: string;
}

/** A column's document field (`_id`, `_id.<col>` or the name), or why it cannot be indexed. */
function fieldOf(ctx: Ctx, col: string): { field: string; kind: ColumnKind } | string {
  const c = ctx.table.columns.find((x) => x.name === col);
  if (!c) return `column "${col}" is not copied`;
  const kind = columnKind(c);
  if (kind.array) return `column "${col}" is an array (${c.type}): MongoDB would index each element`;
  if (kind.scalar === 'jsonb' || kind.scalar === 'json') return `column "${col}" is ${c.type}: MongoDB would index arrays in it element by element`;
  if (col.includes('.') || col.startsWith('$')) return `column "${col}": a MongoDB index key cannot name a field with "." or a leading "$"`;
  const pk = ctx.table.primaryKey;
  if (pk.includes(col)) return { field: pk.length === 1 ? '_id' : `_id.${col}`, kind };
  return { field: col, kind };
}

/** One index item (`a`, `"A b" DESC`, `a COLLATE "C" text_pattern_ops`): the column and its direction. */
function item(text: string): { col: string; dir: 1 | -1 } | undefined {
  const id = identifier(text);
  if (!id || id.rest.startsWith('(') || id.rest.startsWith('::') || /^[-+*/|<>=!~]/.test(id.rest)) return undefined; // an expression
  const dir = /(^|\s)DESC(\s|$)/.test(id.rest) ? -1 : 1;
  return { col: id.name, dir };
}

type Pred = { [k: string]: Json };

/** A literal as pg_get_expr prints it: `42`, `-1.5`, `'text'::text`, `true`. */
function literal(s: string): { kind: 'number' | 'string' | 'bool'; value: Json } | undefined {
  const t = stripParens(s);
  if (/^-?\d+(\.\d+)?$/.test(t)) return Math.abs(Number(t)) <= Number.MAX_SAFE_INTEGER ? { kind: 'number', value: Number(t) } : undefined;
  if (t === 'true' || t === 'false') return { kind: 'bool', value: t === 'true' };
  const m = /^'((?:[^']|'')*)'(?:::[a-z ]+(?:\(\d+\))?)?$/.exec(t);
  return m ? { kind: 'string', value: m[1]!.replace(/''/g, "'") } : undefined;
}

/** A column reference, possibly cast (`(status)::text`), as pg_get_expr prints it. */
function columnRef(s: string): string | undefined {
  const t = stripParens(s);
  const cast = /^\((.+)\)::[a-z ]+$/.exec(t);
  const id = identifier(cast ? cast[1]!.trim() : t);
  return id && id.rest === '' ? id.name : undefined;
}

const NUMBER_KINDS = new Set(['int32', 'int64', 'double']);
const OPS: Record<string, string> = { '=': '$eq', '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };

/** A WHERE predicate as a partialFilterExpression, or why not. */
function predicate(ctx: Ctx, text: string): Pred[] | string {
  const out: Pred[] = [];
  for (const part of splitTopLevel(stripParens(text), ' AND ')) {
    const p = stripParens(part);
    const fail = `its predicate part "${p}" has no simple MongoDB equivalent`;
    const notNull = /^(.+) IS NOT NULL$/.exec(p);
    if (notNull) {
      const col = columnRef(notNull[1]!);
      const f = col === undefined ? fail : fieldOf(ctx, col);
      if (typeof f === 'string') return f;
      const types = bsonTypesOf(f.kind);
      if (!types) return fail;
      out.push({ [f.field]: typeFilter(types) });
      continue;
    }
    const bare = /^(NOT )?(.+)$/.exec(p)!;
    const boolCol = columnRef(bare[2]!);
    if (boolCol !== undefined) {
      const f = fieldOf(ctx, boolCol);
      if (typeof f === 'string') return f;
      if (f.kind.scalar !== 'bool') return fail;
      out.push({ [f.field]: !bare[1] });
      continue;
    }
    const cmp = splitTopLevel(p, ' ');
    const opAt = cmp.findIndex((x) => x in OPS);
    if (opAt <= 0) return fail;
    const col = columnRef(cmp.slice(0, opAt).join(' '));
    const lit = literal(cmp.slice(opAt + 1).join(' '));
    if (col === undefined || !lit) return fail;
    const f = fieldOf(ctx, col);
    if (typeof f === 'string') return f;
    const op = OPS[cmp[opAt]!]!;
    const fits =
      (lit.kind === 'number' && NUMBER_KINDS.has(f.kind.scalar)) ||
      (lit.kind === 'bool' && f.kind.scalar === 'bool' && op === '$eq') ||
      (lit.kind === 'string' && f.kind.scalar === 'string' && op === '$eq');
    if (!fits) return fail;
    out.push({ [f.field]: { [op]: lit.value } });
  }
  return out;
}

interface Source {
  name: string;
  what: string;
  items: string;
  unique: boolean;
  nullsNotDistinct: boolean;
  where?: string;
  deferrable?: boolean;
}

function build(ctx: Ctx, s: Source): MongoIndexSpec | string {
  const skip = (why: string) => `${ctx.label}: ${s.what} ${s.name} is not built on MongoDB: ${why}`;
  const key: [string, 1 | -1][] = [];
  const nullable: { field: string; kind: ColumnKind }[] = [];
  for (const text of splitTopLevel(s.items)) {
    const it = item(text);
    if (!it) return skip(`"${text}" is an expression, not a column`);
    const f = fieldOf(ctx, it.col);
    if (typeof f === 'string') return skip(f);
    key.push([f.field, it.dir]);
    if (['timestamptz', 'timestamp'].includes(f.kind.scalar) && !f.field.startsWith('_id')) key.push([`${f.field}${MICROS_SUFFIX}`, it.dir]);
    if (ctx.table.columns.find((c) => c.name === it.col)?.nullable && !f.field.startsWith('_id')) nullable.push(f);
  }
  if (key.length === 1 && key[0]![0] === '_id') return skip('it is the primary key, which is _id (indexed and unique already)');
  const spec: MongoIndexSpec = { name: s.name, key };
  const filter: Pred[] = [];
  if (s.where) {
    const p = predicate(ctx, s.where);
    if (typeof p === 'string') return skip(`partial (WHERE ${stripParens(s.where)}): ${p}`);
    filter.push(...p);
  }
  let warning: string | undefined;
  if (s.unique && s.deferrable) {
    warning = `${ctx.label}: ${s.what} ${s.name} is DEFERRABLE: built on MongoDB without unique (MongoDB checks each write at once)`;
  } else if (s.unique) {
    spec.unique = true;
    if (!s.nullsNotDistinct) {
      // PostgreSQL checks only rows whose key columns are all non-null: index only those documents.
      for (const f of nullable) {
        const types = bsonTypesOf(f.kind);
        if (!types) return skip(`unique over nullable column "${f.field}" whose values have no single BSON type to filter nulls out`);
        filter.push({ [f.field]: typeFilter(types) });
      }
    }
  }
  if (filter.length) spec.partialFilterExpression = filter.length === 1 ? filter[0]! : { $and: filter };
  return warning ? Object.assign(spec, { warning }) : spec;
}

/** PostgreSQL `USING btree (a, b DESC) INCLUDE (c) NULLS NOT DISTINCT WITH (…) WHERE (…)` to its parts. */
function parseIndex(ix: PgIndexFact): Source | string {
  const m = /^USING (\w+) \(/.exec(ix.using);
  if (!m) return `cannot read its definition "${ix.using}"`;
  if (m[1] !== 'btree') return `it is a ${m[1]} index (MongoDB builds btree-like indexes only)`;
  const p = parenthesized(ix.using, m[0].length - 1);
  if (!p) return `cannot read its definition "${ix.using}"`;
  const rest = ix.using.slice(p.end);
  const where = / WHERE (.+)$/.exec(rest)?.[1];
  return { name: ix.name, what: ix.unique ? 'unique index' : 'index', items: p.inner, unique: ix.unique, nullsNotDistinct: /NULLS NOT DISTINCT/.test(rest.replace(/ WHERE .+$/, '')), where };
}

/** `UNIQUE [NULLS NOT DISTINCT] (a, b) [INCLUDE (c)] [DEFERRABLE …]`. */
function parseUnique(c: PgConstraintFact): Source | string {
  const m = /^UNIQUE (NULLS NOT DISTINCT )?\(/.exec(c.definition);
  const p = m ? parenthesized(c.definition, m[0].length - 1) : undefined;
  if (!m || !p) return `cannot read its definition "${c.definition}"`;
  const rest = c.definition.slice(p.end);
  return { name: c.name, what: 'unique constraint', items: p.inner, unique: true, nullsNotDistinct: !!m[1], deferrable: /(^|\s)DEFERRABLE/.test(rest) && !/NOT DEFERRABLE/.test(rest) };
}

/**
 * The MongoDB indexes of a PostgreSQL table (from the plan's `extra`), and a warning for each index or unique
 * constraint not built as it is on PostgreSQL. A table without PostgreSQL facts (another engine's) gives nothing.
 */
export function pgIndexesToMongo(table: Pick<TableSchema, 'columns' | 'primaryKey' | 'extra' | 'source'>): { indexes: MongoIndexSpec[]; warnings: string[] } {
  const extra = table.extra as { indexes?: PgIndexFact[]; constraints?: PgConstraintFact[]; engine?: string } | null;
  const indexes: MongoIndexSpec[] = [];
  const warnings: string[] = [];
  if (!extra || extra.engine !== undefined || !Array.isArray(extra.indexes)) return { indexes, warnings };
  const ctx: Ctx = { table, label: `${table.source.schema}.${table.source.name}` };
  const sources: (Source | string)[] = [];
  for (const ix of extra.indexes) {
    const s = parseIndex(ix);
    sources.push(typeof s === 'string' ? `${ctx.label}: ${ix.unique ? 'unique index' : 'index'} ${ix.name} is not built on MongoDB: ${s}` : s);
  }
  for (const c of extra.constraints ?? []) {
    if (c.type === 'exclusion') sources.push(`${ctx.label}: exclusion constraint ${c.name} is not built on MongoDB: MongoDB has no exclusion constraints (${c.definition})`);
    if (c.type !== 'unique') continue;
    const s = parseUnique(c);
    sources.push(typeof s === 'string' ? `${ctx.label}: unique constraint ${c.name} is not built on MongoDB: ${s}` : s);
  }
  for (const s of sources) {
    const r = typeof s === 'string' ? s : build(ctx, s);
    if (typeof r === 'string') {
      if (!r.includes('it is the primary key')) warnings.push(r);
      continue;
    }
    const { warning, ...spec } = r as MongoIndexSpec & { warning?: string };
    if (warning) warnings.push(warning);
    indexes.push(spec);
  }
  return { indexes, warnings };
}
