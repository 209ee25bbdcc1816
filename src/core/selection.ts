/**
 * Which source tables a flow copies and what they are called on the target. Pure: the adapters list the candidate
 * tables, this decides. Names are matched exactly as the database spells them (case-sensitive), because
 * `public.Orders` and `public.orders` are two different tables in PostgreSQL; a part in double quotes is literal.
 */
import { ConfigError } from './errors.js';
import { tableKey, type TableName } from './model.js';
import type { Selection, TableControlConfig } from './ports/source.js';

/** Schemas that are never copied: the catalog, and `_ferry`, where Ferry keeps its own bookkeeping on the target. */
const SYSTEM_SCHEMAS = new Set(['pg_catalog', 'information_schema', 'pg_toast', '_ferry']);

/** `pg_*` schemas are reserved by PostgreSQL (pg_temp_N, pg_toast_temp_N): users cannot create them. */
export function isSystemSchema(schema: string): boolean {
  return SYSTEM_SCHEMAS.has(schema) || schema.startsWith('pg_');
}

interface Pattern {
  text: string;
  schema: RegExp;
  name: RegExp;
  /** Literal parts: a rename of `public.orders` beats one of `public.*`, which beats `*.*`. */
  specificity: number;
}

/**
 * One side of `schema.table`. A part in double quotes is literal: it may hold dots, `*`, `?` and (doubled) quotes,
 * e.g. `"odd.schema"."Order ""Items"""`. Unquoted parts are globs.
 */
interface Part {
  text: string;
  quoted: boolean;
}

function hasWildcard(part: string | Part): boolean {
  return typeof part === 'string' ? /[*?]/.test(part) : !part.quoted && /[*?]/.test(part.text);
}

function globToRegExp(glob: string | Part): RegExp {
  const part = typeof glob === 'string' ? { text: glob, quoted: false } : glob;
  const body = part.text.replace(/[.+^${}()|[\]\\*?]/g, (c) => (part.quoted ? `\\${c}` : c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${body}$`, 's');
}

/** `schema.table`, either part possibly quoted; undefined when the text is not exactly two parts. */
export function splitQualifiedName(text: string): [Part, Part] | undefined {
  const parts: Part[] = [];
  let i = 0;
  while (i <= text.length) {
    if (text[i] === '"') {
      let out = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) return undefined; // unterminated quote
        if (text[j] === '"') {
          if (text[j + 1] === '"') {
            out += '"';
            j += 2;
            continue;
          }
          break;
        }
        out += text[j++];
      }
      parts.push({ text: out, quoted: true });
      i = j + 1;
    } else {
      // An unquoted table part runs to the end (an older config may hold `schema.a.b`); a schema part to the dot.
      const dot = parts.length === 1 ? -1 : text.indexOf('.', i);
      const end = dot < 0 ? text.length : dot;
      const raw = text.slice(i, end);
      if (raw.includes('"')) return undefined;
      parts.push({ text: raw, quoted: false });
      i = end;
    }
    if (i === text.length) break;
    if (text[i] !== '.') return undefined;
    i++;
  }
  if (parts.length !== 2 || parts.some((p) => p.text === '')) return undefined;
  return [parts[0]!, parts[1]!];
}

/** Split `schema.table` (the config allows exactly one unquoted dot). */
function splitPattern(text: string, field: string): [Part, Part] {
  const parts = splitQualifiedName(text);
  if (!parts) {
    throw new ConfigError(
      `${field} \`${text}\` is not \`schema.table\``,
      'write both parts, e.g. `public.*` or `sales.orders`; quote a part that holds a dot or a quote: `sales."odd.name"`, `"my ""q"" schema".t`',
    );
  }
  return parts;
}

function parsePattern(text: string, field: string): Pattern {
  const [schema, name] = splitPattern(text, field);
  return {
    text,
    schema: globToRegExp(schema),
    name: globToRegExp(name),
    specificity: (hasWildcard(name) ? 0 : 2) + (hasWildcard(schema) ? 0 : 1),
  };
}

function matches(p: Pattern, t: TableName): boolean {
  return p.schema.test(t.schema) && p.name.test(t.name);
}

interface Rename {
  from: Pattern;
  /** Target parts; `null` keeps the source's part (the `*` of `public.* -> app.*`). */
  schema: string | null;
  name: string | null;
}

function parseRenames(rename: Record<string, string>): Rename[] {
  return Object.entries(rename).map(([from, to]) => {
    const field = `rename \`${from}\``;
    const [schemaPart, namePart] = splitPattern(to, `${field}: target`);
    const [schema, name] = [schemaPart.text, namePart.text];
    const keep = (p: Part) => !p.quoted && p.text === '*';
    for (const part of [schemaPart, namePart]) {
      if (hasWildcard(part) && !keep(part)) {
        throw new ConfigError(
          `${field}: target \`${to}\` may use \`*\` only as a whole part, meaning "keep the source's name"`,
          'write e.g. `sales.* -> archive.*` or `sales.orders -> archive.orders_2024`',
        );
      }
    }
    return { from: parsePattern(from, field), schema: keep(schemaPart) ? null : schema, name: keep(namePart) ? null : name };
  });
}

function applyRename(t: TableName, renames: Rename[], used?: Set<Rename>): TableName {
  const hits = renames.filter((r) => matches(r.from, t));
  // A rule that matches counts as used even when a more specific one wins: it is not a typo.
  for (const r of hits) used?.add(r);
  if (hits.length === 0) return { schema: t.schema, name: t.name };
  const best = Math.max(...hits.map((r) => r.from.specificity));
  const top = hits.filter((r) => r.from.specificity === best);
  const results = top.map((r) => ({ r, target: { schema: r.schema ?? t.schema, name: r.name ?? t.name } }));
  const distinct = new Set(results.map((x) => tableKey(x.target)));
  if (distinct.size > 1) {
    throw new ConfigError(
      `${tableKey(t)} matches renames ${top.map((r) => `\`${r.from.text}\``).join(' and ')}, which disagree ` +
        `(${[...distinct].join(' vs ')})`,
      `add an exact rename for ${tableKey(t)}`,
    );
  }
  return results[0]!.target;
}

/**
 * The target name of any relation under the flow's rename rules (tables, but also partitions and sequences that
 * follow a schema rename). Unlike `selectTables`, an unmatched name is simply kept.
 */
export function renameTable(source: TableName, rename: Record<string, string>): TableName {
  return applyRename(source, parseRenames(rename));
}

function compareNames(a: TableName, b: TableName): number {
  // Code-unit order, not localeCompare: the plan must be identical on every machine.
  if (a.schema !== b.schema) return a.schema < b.schema ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return 0;
}

/**
 * The tables `sel` picks out of `candidates`, with their target names, sorted by source name. Strict where a typo
 * would silently change what is copied: an include entry or a rename that matches nothing is an error, and so are
 * two tables landing on one target name.
 */
export function selectTables(
  candidates: TableName[],
  sel: Selection,
): { source: TableName; target: TableName }[] {
  const seen = new Set<string>();
  const pool = candidates
    .filter((t) => !isSystemSchema(t.schema))
    .filter((t) => (seen.has(tableKey(t)) ? false : (seen.add(tableKey(t)), true)))
    .sort(compareNames);
  const include = sel.include.map((p, i) => parsePattern(p, `include[${i}]`));
  const exclude = sel.exclude.map((p, i) => parsePattern(p, `exclude[${i}]`));
  const renames = parseRenames(sel.rename);

  if (include.length === 0) throw new ConfigError('`include` is empty: nothing to copy', 'leave it out to copy every table (`*.*`)');
  // Every include entry must match something: a typo would otherwise silently leave a table behind.
  include.forEach((p, i) => {
    if (!pool.some((t) => matches(p, t))) throw noMatch(`include[${i}]`, p, pool);
  });

  const chosen = pool.filter((t) => include.some((p) => matches(p, t)) && !exclude.some((p) => matches(p, t)));
  if (chosen.length === 0) {
    throw new ConfigError('`exclude` removes every table that `include` selects: nothing to copy');
  }

  const used = new Set<Rename>();
  const out = chosen.map((source) => ({ source, target: applyRename(source, renames, used) }));
  for (const r of renames) {
    if (!used.has(r)) {
      throw new ConfigError(
        `rename \`${r.from.text}\` matches no selected table`,
        'check the spelling (names are case-sensitive) and that `include`/`exclude` keep the table',
      );
    }
  }

  const byTarget = new Map<string, TableName>();
  for (const { source, target } of out) {
    if (isSystemSchema(target.schema)) {
      throw new ConfigError(`${tableKey(source)} would be renamed into the reserved schema \`${target.schema}\``);
    }
    const key = tableKey(target);
    const other = byTarget.get(key);
    if (other) {
      throw new ConfigError(
        `${tableKey(other)} and ${tableKey(source)} would both be copied to ${key}`,
        'rename one of them, or exclude one',
      );
    }
    byTarget.set(key, source);
  }
  return out;
}

function noMatch(field: string, p: Pattern, pool: TableName[]): ConfigError {
  if (pool.length === 0) {
    return new ConfigError(`${field} \`${p.text}\` matches no table in the source: it has no tables outside system schemas`);
  }
  // Prefer tables in the schemas the pattern names, ranked by how close their names are to what was written.
  const inSchema = pool.filter((t) => p.schema.test(t.schema));
  const among = inSchema.length > 0 ? inSchema : pool;
  const wanted = p.text.replace(/[*?]/g, '').toLowerCase();
  const ranked = among
    .map((t) => ({ t, d: distance(wanted, tableKey(t).toLowerCase()) }))
    .sort((a, b) => a.d - b.d || compareNames(a.t, b.t));
  const shown = ranked.slice(0, 10).map((x) => tableKey(x.t));
  const more = among.length > shown.length ? ` (and ${among.length - shown.length} more)` : '';
  const folded = pool.find((t) => matches(parsePatternLoose(p.text.toLowerCase()), lower(t)));
  const hint = folded
    ? `names are case-sensitive: did you mean \`${tableKey(folded)}\`?`
    : 'fix the pattern or remove the entry';
  return new ConfigError(
    `${field} \`${p.text}\` matches no table in the source; tables there: ${shown.join(', ')}${more}`,
    hint,
  );
}

function parsePatternLoose(text: string): Pattern {
  return parsePattern(text, 'pattern');
}

function lower(t: TableName): TableName {
  return { schema: t.schema.toLowerCase(), name: t.name.toLowerCase() };
}

/** Levenshtein distance; names are short, so the quadratic table is fine. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Whether a table the flow did not know (created on the source while streaming) belongs to it: matched by an
 * `include` entry and by no `exclude` entry, outside the system schemas. Its target name is `renameTable`'s.
 */
export function matchesSelection(t: TableName, sel: Selection): boolean {
  if (isSystemSchema(t.schema)) return false;
  const include = sel.include.map((p, i) => parsePattern(p, `include[${i}]`));
  const exclude = sel.exclude.map((p, i) => parsePattern(p, `exclude[${i}]`));
  return include.some((p) => matches(p, t)) && !exclude.some((p) => matches(p, t));
}

/**
 * The `tables` entry of a source table, if any. Keys are exact `schema.table` names (quote a part holding a dot).
 */
export function tableControlsFor(t: TableName, sel: Selection): TableControlConfig | undefined {
  for (const [key, cfg] of Object.entries(sel.tables ?? {})) {
    const parts = splitQualifiedName(key);
    if (parts && parts[0].text === t.schema && parts[1].text === t.name) return cfg;
  }
  return undefined;
}

/** Every `tables` entry must name a selected table: a typo would otherwise silently copy a column or every row. */
export function assertTableControlsMatch(selected: TableName[], sel: Selection): void {
  const keys = new Set(selected.map(tableKey));
  for (const key of Object.keys(sel.tables ?? {})) {
    const parts = splitQualifiedName(key);
    if (!parts || parts.some((p) => hasWildcard(p))) {
      throw new ConfigError(`tables \`${key}\`: expected an exact \`schema.table\` (no wildcards)`, 'name one source table per entry, e.g. `public.orders`');
    }
    if (!keys.has(`${parts[0].text}.${parts[1].text}`)) {
      throw new ConfigError(
        `tables \`${key}\` names no selected table`,
        'use the source name (case-sensitive, before any `rename`), and check that `include`/`exclude` keep the table',
      );
    }
  }
}

/**
 * Check one table's column controls against its columns and resolve them: the kept columns and the rename map.
 * Every mistake is an error naming the table and the column, before anything is written.
 */
export function resolveTableControls(
  table: TableName,
  columns: { name: string; generated?: string }[],
  primaryKey: string[],
  cfg: TableControlConfig,
): { kept: string[]; excluded: string[]; rename: Record<string, string>; where?: string } {
  const at = `tables."${tableKey(table)}"`;
  const names = columns.map((c) => c.name);
  const known = new Set(names);
  const unknown = (field: string, col: string) =>
    new ConfigError(`${at}.${field}: ${tableKey(table)} has no column \`${col}\``, `its columns: ${names.join(', ')} (names are case-sensitive)`);
  const excluded = [...new Set(cfg.excludeColumns ?? [])];
  for (const col of excluded) {
    if (!known.has(col)) throw unknown('excludeColumns', col);
    if (primaryKey.includes(col)) {
      throw new ConfigError(
        `${at}.excludeColumns: \`${col}\` is part of the primary key of ${tableKey(table)}, which Ferry needs to copy, stream and verify rows`,
        'keep the column (rename it if the target wants another name)',
      );
    }
  }
  const gone = new Set(excluded);
  const kept = names.filter((n) => !gone.has(n));
  if (kept.filter((n) => !columns.find((c) => c.name === n)?.generated).length === 0) {
    throw new ConfigError(`${at}.excludeColumns leaves ${tableKey(table)} with no column to copy`);
  }
  const rename: Record<string, string> = {};
  for (const [from, to] of Object.entries(cfg.renameColumns ?? {})) {
    if (!known.has(from)) throw unknown('renameColumns', from);
    if (gone.has(from)) throw new ConfigError(`${at}.renameColumns: \`${from}\` is also in excludeColumns`, 'remove it from one of them');
    if (from === to) continue;
    rename[from] = to;
  }
  // Target names must be distinct; a rename into any source column name is refused (even one renamed away or
  // excluded): the target renames one column at a time, so a swap or a chain would collide midway.
  for (const [from, to] of Object.entries(rename)) {
    if (known.has(to)) {
      throw new ConfigError(
        `${at}.renameColumns: \`${from}\` -> \`${to}\` clashes with the column \`${to}\` of ${tableKey(table)}`,
        'choose a target name no source column of the table has',
      );
    }
  }
  const seen = new Map<string, string>();
  for (const [from, to] of Object.entries(rename)) {
    const other = seen.get(to);
    if (other !== undefined) {
      throw new ConfigError(`${at}.renameColumns: \`${other}\` and \`${from}\` would both become \`${to}\``, 'give each a distinct name');
    }
    seen.set(to, from);
  }
  const where = cfg.where?.trim();
  if (cfg.where !== undefined && !where) throw new ConfigError(`${at}.where is empty`, 'leave it out to copy every row');
  if (where && /;/.test(where.replace(/'(?:[^']|'')*'/g, "''"))) {
    throw new ConfigError(`${at}.where: a row filter is one boolean expression, without \`;\``, `e.g. where: "region = 'eu'"`);
  }
  return { kept, excluded, rename, ...(where ? { where } : {}) };
}
