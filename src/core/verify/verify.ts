/**
 * `ferry verify`: compare source and target table by table and range by range, with checksums computed inside each
 * database (only digests travel), in parallel. A range that differs is checked again after a pause before it is
 * reported, so changes still in flight through the stream do not raise false alarms.
 */
import { tableKey, type FlowRecord, type Json, type TableSchema } from '../model.js';
import { targetView } from '../cdc/column-map.js';
import type { Checksums, RangeChecksum } from '../ports/checksum.js';
import { FerryError } from '../errors.js';

export interface RangeDiff {
  table: string;
  label: string;
  range: Json | null;
  source: RangeChecksum;
  target: RangeChecksum;
}

export interface TableVerdict {
  table: string;
  target: string;
  sourceRows: number;
  targetRows: number;
  ranges: number;
  differing: number;
}

export interface VerifyReport {
  tables: TableVerdict[];
  diffs: RangeDiff[];
  ok: boolean;
}

export interface VerifyOptions {
  concurrency: number;
  /** How many times a differing range is checked again before it is reported. */
  rechecks?: number;
  recheckDelayMs?: number;
  /** Limit to these source tables (keys). */
  only?: ReadonlySet<string>;
  /**
   * Cross-engine pairs (src/core/verify/cross-engine.ts): tables whose planned ranges mean different rows on the two
   * engines are compared whole; and the table each side's checksum is given (default: the source's schema, and the
   * target's view of it under renamed columns).
   */
  wholeTable?: (t: TableSchema) => boolean;
  targetTable?: (flow: FlowRecord, t: TableSchema) => TableSchema;
}

interface Unit {
  table: string;
  label: string;
  range: Json | null;
}

/** The units of comparison: the flow's planned ranges; a keyless table as a whole (block ranges differ per side). */
export function verificationUnits(flow: FlowRecord, only?: ReadonlySet<string>, wholeTable?: (t: TableSchema) => boolean): Unit[] {
  const units: Unit[] = [];
  for (const t of flow.tables) {
    const key = tableKey(t.source);
    if (only && !only.has(key)) continue;
    const ranges = flow.ranges[key] ?? [];
    if (t.primaryKey.length === 0 || ranges.length === 0 || wholeTable?.(t)) units.push({ table: key, label: 'whole table', range: null });
    else for (const r of ranges) units.push({ table: key, label: r.label, range: r.range });
  }
  return units;
}

/**
 * The table as the target holds it: renamed columns get their target names when finalize is done (the target loads
 * under the source names and renames last, so indexes and constraints are built from the source's definitions).
 */
export function targetSide(flow: FlowRecord, t: TableSchema): TableSchema {
  const finalized = ['streaming', 'stopping', 'stopped', 'done'].includes(flow.phase);
  if (finalized) return targetView(t);
  const { controls: _, ...rest } = t;
  return rest;
}

export async function verifyFlow(
  deps: { source: Checksums; target: Checksums },
  flow: FlowRecord,
  opts: VerifyOptions,
): Promise<VerifyReport> {
  // Digests of different kinds (PostgreSQL's md5 of row text, MongoDB's of canonical Extended JSON) never match:
  // comparing them would report every range as different.
  if (deps.source.checksumKind !== deps.target.checksumKind) {
    throw new FerryError(
      `verify cannot compare this flow's two sides: the source computes ${deps.source.checksumKind} checksums and the target ${deps.target.checksumKind}`,
      'both sides must compute the same digest: `ferry verify` picks them from the endpoints\' engines (src/cli/verify-sides.ts); this pairing of adapters is a bug to report',
    );
  }
  const tables = new Map(flow.tables.map((t) => [tableKey(t.source), t]));
  const compare = async (u: Unit) => {
    const schema = tables.get(u.table)!;
    // Kept columns only, in the same order; the target under its column names and without the source's row filter.
    const [source, target] = await Promise.all([deps.source.checksum(schema, u.range), deps.target.checksum((opts.targetTable ?? targetSide)(flow, schema), u.range)]);
    return { ...u, source, target, same: source.rows === target.rows && source.hash === target.hash };
  };
  let results = await mapLimit(verificationUnits(flow, opts.only, opts.wholeTable), opts.concurrency, compare);
  results = await coverWholeTables(deps, flow, results, opts, compare);
  for (let i = 0; i < (opts.rechecks ?? 2) && results.some((r) => !r.same); i++) {
    await new Promise((r) => setTimeout(r, opts.recheckDelayMs ?? 1500));
    const again = await mapLimit(results.filter((r) => !r.same), opts.concurrency, compare);
    const byUnit = new Map(again.map((r) => [`${r.table}\u0000${r.label}`, r]));
    results = results.map((r) => byUnit.get(`${r.table}\u0000${r.label}`) ?? r);
  }
  const verdicts = new Map<string, TableVerdict>();
  for (const r of results) {
    const v = verdicts.get(r.table) ?? {
      table: r.table,
      target: tableKey(tables.get(r.table)!.target),
      sourceRows: 0,
      targetRows: 0,
      ranges: 0,
      differing: 0,
    };
    v.sourceRows += r.source.rows;
    v.targetRows += r.target.rows;
    v.ranges++;
    if (!r.same) v.differing++;
    verdicts.set(r.table, v);
  }
  const diffs = results.filter((r) => !r.same).map(({ same: _, ...d }) => d);
  return { tables: [...verdicts.values()], diffs, ok: diffs.length === 0 };
}

/**
 * Where a side can count a table (Checksums.count), the rows its ranges held must be all of them; a table where they
 * are not (a key outside every planned range) is compared whole instead, which is always exact.
 */
async function coverWholeTables<R extends Unit & { source: RangeChecksum; target: RangeChecksum }>(
  deps: { source: Checksums; target: Checksums },
  flow: FlowRecord,
  results: R[],
  opts: VerifyOptions,
  compare: (u: Unit) => Promise<R>,
): Promise<R[]> {
  if (!deps.source.count && !deps.target.count) return results;
  const sums = new Map<string, { source: number; target: number; ranged: boolean }>();
  for (const r of results) {
    const s = sums.get(r.table) ?? { source: 0, target: 0, ranged: r.range !== null };
    s.source += r.source.rows;
    s.target += r.target.rows;
    sums.set(r.table, s);
  }
  const tables = new Map(flow.tables.map((t) => [tableKey(t.source), t]));
  const uncovered = new Set<string>();
  await mapLimit([...sums].filter(([, s]) => s.ranged), opts.concurrency, async ([key, s]) => {
    const schema = tables.get(key)!;
    const [source, target] = await Promise.all([
      deps.source.count?.(schema),
      deps.target.count?.((opts.targetTable ?? targetSide)(flow, schema)),
    ]);
    if ((source !== undefined && source !== s.source) || (target !== undefined && target !== s.target)) uncovered.add(key);
  });
  if (uncovered.size === 0) return results;
  const whole = await mapLimit([...uncovered], opts.concurrency, (table) => compare({ table, label: 'whole table (rows outside the planned ranges)', range: null }));
  return [...results.filter((r) => !uncovered.has(r.table)), ...whole];
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return out;
}
