/**
 * Where a Ferry process spent its CPU, from a `node --cpu-prof` profile (FERRY_BENCH_PROFILE=<dir> npm run
 * bench:cdc writes one per Ferry process):
 *
 *   node --import tsx bench/cpu-profile.ts <file.cpuprofile> [--top 25] [--from <ms>] [--to <ms>] [--timeline <ms>]
 *
 * - by component: each sample is charged to the deepest Ferry source file on its stack (so the pg driver's work
 *   for an apply statement counts as apply, its parsing of replication messages as the replication stream), or to
 *   the leaf's own bucket (GC, idle, program, node internals) when no Ferry frame is on the stack;
 * - by leaf: self time of the hottest functions, with their file.
 * `--from/--to` keep only samples in that window (ms since the profile's start), e.g. to leave out the snapshot;
 * without them, the burst window bench:cdc wrote beside the profile is used. `--timeline` prints busy and GC
 * shares per bucket of that many ms (shows when Ferry waits: during the burst's generation, on the target).
 */
import { existsSync, readFileSync } from 'node:fs';

interface Frame { functionName: string; url: string; lineNumber: number }
interface Node { id: number; callFrame: Frame; children?: number[] }
interface Profile { nodes: Node[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

/** Components by Ferry source path (first match wins). */
const COMPONENTS: [RegExp, string][] = [
  [/cdc\/pgoutput-decode/, 'decoder (pgoutput-decode)'],
  [/cdc\/pgoutput-stream/, 'replication stream (pgoutput-stream)'],
  [/cdc\/change-source|cdc\/slot|cdc\/stream-hooks|cdc\/schema-evolution|cdc\/partitions/, 'source side (change-source, hooks)'],
  [/core\/cdc\/stream-machine/, 'streamer (stream-machine)'],
  [/core\/cdc\/streamer|core\/cdc\/serial/, 'streamer (streamer, lane)'],
  [/core\/cdc\//, 'streamer (other core/cdc)'],
  [/cdc\/apply-sql/, 'apply SQL (apply-sql)'],
  [/cdc\/change-target|cdc\/apply-/, 'apply (change-target)'],
  [/adapters\/sqlite|state-store/, 'state store (sqlite)'],
  [/src\/(progress|ui|cli)\//, 'progress / cli'],
  [/src\/runtime\//, 'runtime'],
  [/src\//, 'other Ferry src'],
];

function componentOf(url: string): string | undefined {
  if (!url.includes('/src/') || url.includes('node_modules')) return undefined;
  for (const [re, name] of COMPONENTS) if (re.test(url)) return name;
  return undefined;
}

function bucketOfLeaf(f: Frame): string {
  const n = f.functionName;
  if (n === '(garbage collector)') return 'GC';
  if (n === '(idle)') return 'idle';
  if (n === '(program)') return '(program: native, compiler)';
  if (f.url.includes('node_modules/pg-protocol')) return 'pg driver: protocol (no Ferry frame)';
  if (f.url.includes('node_modules/pg/')) return 'pg driver (no Ferry frame)';
  if (f.url.includes('node_modules/')) return `${f.url.replace(/.*node_modules\/((@[^/]+\/)?[^/]+).*/, '$1')} (no Ferry frame)`;
  if (f.url.startsWith('node:') || f.url === '') return 'node internals / native (no Ferry frame)';
  return 'other';
}

const short = (url: string) => url.replace(/^file:\/\//, '').replace(/.*\/(src|node_modules)\//, '$1/');

export function summarize(p: Profile, opts: { top?: number; from?: number; to?: number; timeline?: number } = {}): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const owner = new Map<number, string>();
  const ownerOf = (id: number): string => {
    const hit = owner.get(id);
    if (hit) return hit;
    const n = byId.get(id)!;
    const comp = componentOf(n.callFrame.url);
    const up = parent.get(id);
    // The deepest Ferry frame: this one if it is Ferry's, else the nearest Ferry ancestor's.
    const r = comp ?? (up !== undefined ? ownerOf(up) : '');
    owner.set(id, r);
    return r;
  };
  const comp = new Map<string, number>();
  const self = new Map<number, number>();
  let t = 0;
  let total = 0;
  let busy = 0;
  /** Per time bucket (ms): busy µs, GC µs, and µs per component. */
  const buckets = new Map<number, { busy: number; gc: number; all: number; by: Map<string, number> }>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (opts.from !== undefined && t / 1000 < opts.from) continue;
    if (opts.to !== undefined && t / 1000 > opts.to) continue;
    const id = p.samples[i]!;
    const leaf = byId.get(id)!.callFrame;
    const name = leaf.functionName === '(garbage collector)' || leaf.functionName === '(idle)' ? bucketOfLeaf(leaf) : ownerOf(id) || bucketOfLeaf(leaf);
    comp.set(name, (comp.get(name) ?? 0) + dt);
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
    if (leaf.functionName !== '(idle)') busy += dt;
    if (opts.timeline) {
      const k = Math.floor((t / 1000 - (opts.from ?? 0)) / opts.timeline);
      let b = buckets.get(k);
      if (!b) buckets.set(k, (b = { busy: 0, gc: 0, all: 0, by: new Map() }));
      b.all += dt;
      if (leaf.functionName !== '(idle)') b.busy += dt;
      if (name === 'GC') b.gc += dt;
      if (name !== 'idle') b.by.set(name, (b.by.get(name) ?? 0) + dt);
    }
  }
  const pctOf = (v: number, of: number) => `${((100 * v) / of).toFixed(1).padStart(5)}%`;
  const lines = [`profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (not idle)`];
  lines.push('  by component (deepest Ferry frame on the stack; % of busy time):');
  for (const [k, v] of [...comp].sort((a, b) => b[1] - a[1])) {
    if (k === 'idle') continue;
    lines.push(`    ${pctOf(v, busy)}  ${(v / 1e6).toFixed(2).padStart(7)} s  ${k}`);
  }
  // Self time by function (merged across nodes of the same function).
  const fn = new Map<string, number>();
  for (const [id, v] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    const key = `${f.functionName || '(anonymous)'}  ${short(f.url)}:${f.lineNumber + 1}  [${ownerOf(id) || '-'}]`;
    fn.set(key, (fn.get(key) ?? 0) + v);
  }
  if (opts.timeline) {
    lines.push(`  timeline (${opts.timeline} ms buckets from the window's start): busy%, GC%, top components`);
    for (const [k, b] of [...buckets].sort((x, y) => x[0] - y[0])) {
      const top = [...b.by].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([n, v]) => `${n.replace(/ \(.*/, '')} ${Math.round((100 * v) / b.all)}%`).join(', ');
      lines.push(`    ${String(k * opts.timeline).padStart(7)} ms  busy ${String(Math.round((100 * b.busy) / b.all)).padStart(3)}%  gc ${String(Math.round((100 * b.gc) / b.all)).padStart(3)}%  ${top}`);
    }
  }
  lines.push(`  hottest functions by self time (% of busy time):`);
  for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, opts.top ?? 25)) lines.push(`    ${pctOf(v, busy)}  ${k}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = Number(args[i + 1]);
    args.splice(i, 2);
    return v;
  };
  const top = opt('--top');
  const from = opt('--from');
  const to = opt('--to');
  const timeline = opt('--timeline');
  for (const file of args) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const side = file.replace(/\.cpuprofile$/, '.window.json');
    let window = { from, to };
    if (from === undefined && to === undefined && existsSync(side)) {
      // Written by bench:cdc: the burst's start and end on the profile's clock (µs).
      const w = JSON.parse(readFileSync(side, 'utf8')) as { start: number; end: number };
      const [a, b] = [(w.start - profile.startTime) / 1000, (w.end - profile.startTime) / 1000];
      window = { from: a, to: b };
      process.stdout.write(`(burst window from ${side}: ${a.toFixed(0)}–${b.toFixed(0)} ms)\n`);
    }
    process.stdout.write(`${file}\n${summarize(profile, { top, timeline, ...window })}\n`);
  }
}
