/**
 * Column controls on rows (config `tables`: excludeColumns, renameColumns), as pure functions. A flow's
 * TableSchema keeps the kept columns under their source names (what the source reads and streams); the target
 * side sees `targetView`, where the renamed columns carry their target names. Row images from the stream are mapped
 * once, before they are applied: excluded columns dropped (a server without publication column lists still sends
 * them), renamed ones renamed.
 */
import type { TableControls, TableSchema } from '../model.js';
import type { Change, RowImage } from '../ports/change-source.js';

/** The table as the target knows it: renamed columns and key, no source-side controls. */
export function targetView(t: TableSchema): TableSchema {
  const c = t.controls;
  if (!c) return t;
  const to = (n: string) => c.rename[n] ?? n;
  const { controls: _, ...rest } = t;
  return { ...rest, columns: t.columns.map((col) => (c.rename[col.name] ? { ...col, name: to(col.name) } : col)), primaryKey: t.primaryKey.map(to) };
}

/** Whether a table's row images need mapping before the target sees them. */
export function mapsRows(c: TableControls | undefined): c is TableControls {
  return !!c && (c.excluded.length > 0 || Object.keys(c.rename).length > 0);
}

/** A source row image in target names, without the excluded columns. Absent columns stay absent. */
export function mapImage(c: TableControls, row: RowImage): RowImage {
  const out: RowImage = {};
  for (const [k, v] of Object.entries(row)) {
    if (c.excluded.includes(k)) continue;
    out[c.rename[k] ?? k] = v;
  }
  return out;
}

/** A target row image (a key the target reports missing) back in source names. */
export function unmapImage(c: TableControls, row: RowImage): RowImage {
  const back = new Map(Object.entries(c.rename).map(([from, to]) => [to, from]));
  const out: RowImage = {};
  for (const [k, v] of Object.entries(row)) out[back.get(k) ?? k] = v;
  return out;
}

/** One change in target names (truncates name tables only, unchanged). */
export function mapChange(c: TableControls, ch: Change): Change {
  switch (ch.op) {
    case 'insert':
      return { ...ch, row: mapImage(c, ch.row) };
    case 'update':
      return { ...ch, row: mapImage(c, ch.row), old: ch.old && mapImage(c, ch.old) };
    case 'delete':
      return { ...ch, old: mapImage(c, ch.old) };
    default:
      return ch;
  }
}

/**
 * Identifiers an SQL text mentions, outside string literals: unquoted ones folded to lower case as PostgreSQL
 * does, quoted ones exact. An over-approximation (function and type names are in it too), used where "might
 * mention this column" is the safe answer: an index on an excluded column, a row filter outside the replica identity.
 */
export function sqlIdentifiers(sql: string): Set<string> {
  const out = new Set<string>();
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'") {
      // A string literal ('' escapes a quote; E'..' also uses backslash escapes).
      const escapes = i > 0 && /[eE]/.test(sql[i - 1]!);
      i++;
      while (i < sql.length) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i++;
      }
      i++;
    } else if (ch === '"') {
      let id = '';
      i++;
      while (i < sql.length) {
        if (sql[i] === '"' && sql[i + 1] === '"') (id += '"'), (i += 2);
        else if (sql[i] === '"') break;
        else id += sql[i++];
      }
      i++;
      out.add(id);
    } else if (ch === '$' && /^\$[A-Za-z_]*\$/.test(sql.slice(i))) {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i))![0];
      const end = sql.indexOf(tag, i + tag.length);
      i = end < 0 ? sql.length : end + tag.length;
    } else if (/[A-Za-z_\u0080-\uffff]/.test(ch)) {
      let j = i;
      while (j < sql.length && /[A-Za-z0-9_$\u0080-\uffff]/.test(sql[j]!)) j++;
      const word = sql.slice(i, j).toLowerCase();
      // E'..', B'..', X'..', N'..': a literal's prefix, not a name.
      if (!(sql[j] === "'" && ['e', 'b', 'x', 'n'].includes(word))) out.add(word);
      i = j;
    } else if (/[0-9]/.test(ch)) {
      while (i < sql.length && /[0-9A-Za-z_.]/.test(sql[i]!)) i++;
    } else i++;
  }
  return out;
}

/** The table's columns an SQL text may mention (see sqlIdentifiers). */
export function mentionedColumns(sql: string, columns: string[]): string[] {
  const ids = sqlIdentifiers(sql);
  return columns.filter((c) => ids.has(c));
}
