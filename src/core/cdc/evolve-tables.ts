/**
 * Changes to the flow's table set while streaming, decided without a database: tables created on the source that
 * the selection matches, partitions attached to or detached from a streamed partitioned table, and the marker
 * messages that carry those discoveries through the source's WAL so that they are acted on in stream order.
 */
import { tableKey, type TableName, type TableSchema } from '../model.js';
import type { Selection } from '../ports/source.js';
import { matchesSelection } from '../selection.js';

/** Prefix of Ferry's marker messages (pg_logical_emit_message); the heartbeat has its own. */
export const PARTS_PREFIX = 'ferry_parts';

export type PartsMarker =
  /** A table created on the source that the selection matches; already added to the publication. */
  | { kind: 'table-added'; table: TableName }
  /** A partition now under `root` (created, or attached with its rows). */
  | { kind: 'attached'; root: string; leaf: TableName }
  /** A partition no longer under `root` (detached or dropped): its rows left the partitioned table. */
  | { kind: 'detached'; root: string; leaf: TableName };

export function encodeMarker(m: PartsMarker): string {
  return JSON.stringify(m);
}

/** A marker's content, or undefined for anything that is not one of ours (another tool's message). */
export function decodeMarker(prefix: string, content: string): PartsMarker | undefined {
  if (prefix !== PARTS_PREFIX) return undefined;
  try {
    const m = JSON.parse(content) as PartsMarker;
    if (m.kind === 'table-added' && m.table?.schema !== undefined && m.table?.name !== undefined) return m;
    if ((m.kind === 'attached' || m.kind === 'detached') && typeof m.root === 'string' && m.leaf?.name !== undefined) return m;
  } catch {
    // not JSON: not ours
  }
  return undefined;
}

/** Tables on the source the flow should take on now: selected, not yet in the flow, not being added already. */
export function tablesToAdd(candidates: TableName[], sel: Selection, known: ReadonlySet<string>): TableName[] {
  return candidates
    .filter((t) => !known.has(tableKey(t)) && matchesSelection(t, sel))
    .sort((a, b) => (tableKey(a) < tableKey(b) ? -1 : tableKey(a) > tableKey(b) ? 1 : 0));
}

/** How the leaves under each streamed partitioned table changed between two looks at the catalog. */
export function diffLeaves(
  before: ReadonlyMap<string, readonly TableName[]>,
  now: ReadonlyMap<string, readonly TableName[]>,
): PartsMarker[] {
  const out: PartsMarker[] = [];
  for (const [root, leaves] of now) {
    const had = new Set((before.get(root) ?? []).map(tableKey));
    for (const leaf of leaves) if (!had.has(tableKey(leaf))) out.push({ kind: 'attached', root, leaf });
  }
  for (const [root, leaves] of before) {
    const has = new Set((now.get(root) ?? []).map(tableKey));
    for (const leaf of leaves) if (!has.has(tableKey(leaf))) out.push({ kind: 'detached', root, leaf });
  }
  return out;
}

/**
 * The schema under which a leaf partition's changes are applied: the root's columns and key (a partition has its
 * parent's columns by name), the leaf's own source and target names, no DDL extras (the leaf's DDL is its root's).
 */
export function leafSchema(root: TableSchema, leaf: TableName, leafTarget: TableName): TableSchema {
  return {
    source: leaf,
    target: leafTarget,
    columns: root.columns,
    primaryKey: root.primaryKey,
    estimatedRows: 0,
    estimatedBytes: 0,
    extra: null,
  };
}
