/**
 * Where each apply lane records its applied position on the target, and what a restart may skip per lane.
 *
 * Each lane's batches record their own position (a row of the target's position table, keyed by the flow plus the
 * lane), atomically with that lane's changes: it is exact for the tables of that lane, so a restart skips exactly
 * what each lane committed (tables without a key, or with other unique indexes, are never replayed over a newer
 * state). Lane 0 also commits serial and streamed transactions.
 *
 * The layout (how many lanes: tables are routed by a hash modulo it) is kept in the state store with a generation.
 * When it changes across a restart, the old lanes' rows no longer describe the new lanes' tables: the new
 * generation starts from `base`, the oldest position any old lane recorded, and writes rows under new keys (so a
 * row of an older generation is never mistaken for the new one's). From `base` on, the stream is replayed for
 * every table (changes converge for tables with a key; a table without one may get duplicate rows from that replay,
 * so change `cdc.lanes` after a clean `ferry stop`, which leaves every lane at the same position).
 * One lane (consistency: transaction) with no layout stored is generation 0: its row is keyed by the flow alone,
 * as it always was.
 */
import type { Position } from '../model.js';
import type { ChangeTarget } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';

export const CDC_LANES = 'cdc-lanes';

export type LaneLayout = {
  lanes: number;
  gen: number;
  /** Where lanes of this generation without a row of their own start (undefined: skip nothing). */
  base?: Position;
};

export function laneKey(flow: string, gen: number, lane: number): string {
  return gen === 0 && lane === 0 ? flow : `${flow}#${gen}.${lane}`;
}

/** A table's lane: a stable hash (FNV-1a) of its source key, so the same table lands on the same lane every run. */
export function laneOf(table: string, lanes: number): number {
  if (lanes <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < table.length; i++) {
    h ^= table.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % lanes;
}

export async function resolveLanes(
  deps: { store: StateStore; target: ChangeTarget },
  flow: string,
  lanes: number,
  compare: (a: Position, b: Position) => number,
): Promise<{ keys: string[]; applied: (Position | undefined)[] }> {
  const stored = ((await deps.store.getCheckpoint(flow, CDC_LANES)) as LaneLayout | undefined) ?? { lanes: 1, gen: 0 };
  const read = async (l: LaneLayout) =>
    Promise.all(Array.from({ length: l.lanes }, async (_, k) => (await deps.target.appliedPosition(laneKey(flow, l.gen, k))) ?? l.base));
  if (stored.lanes === lanes) {
    return { keys: Array.from({ length: lanes }, (_, k) => laneKey(flow, stored.gen, k)), applied: await read(stored) };
  }
  const old = await read(stored);
  let base: Position | undefined = old[0];
  for (const p of old) base = p === undefined || base === undefined ? undefined : compare(p, base) < 0 ? p : base;
  const next: LaneLayout = { lanes, gen: stored.gen + 1, ...(base !== undefined ? { base } : {}) };
  // Recorded before any batch of the new generation commits: a restart then reads the new keys (or `base`).
  await deps.store.putCheckpoint(flow, CDC_LANES, next);
  return { keys: Array.from({ length: lanes }, (_, k) => laneKey(flow, next.gen, k)), applied: Array.from({ length: lanes }, () => base) };
}
