/**
 * CPU per one-row source transaction of the streamer itself: the state machine and its executor
 * (src/core/cdc/streamer.ts), fed scripted one-row transactions, applying into a target that does nothing (its
 * commit only waits `FERRY_ONEROW_COMMIT_MS`, like a round trip), with the real SQLite state store for checkpoints.
 * What it measures is what issue 10 (b) pays per transaction in Ferry's own process besides decoding and the
 * target's SQL: routing, the commit-point queue, timers, acknowledgements.
 *
 * Each (tree, mode, round) runs in a child process (same JIT and GC state for every tree), alternating trees, so
 * two trees measured in one run compare under the same machine load. The figure is process.cpuUsage() (user +
 * system) of the child from the first hand-over until the last commit is acknowledged, per transaction.
 *
 *   node --import tsx bench/machine-onerow.ts [root ...]      # default: this checkout; e.g. /tmp/base /work/wt/x
 *
 * A `harness` row (the scripted source alone, FERRY_ONEROW_HARNESS=0 leaves it out) is the floor under every
 * figure; the ratio of two trees is taken with it subtracted.
 *
 * Modes (FERRY_ONEROW_MODES, comma separated, default all):
 *   flood-1    one transaction per hand-over, the next one at once (a reader that keeps up with a busy source)
 *   flood-16   16 transactions per hand-over, back to back
 *   paced-4ms  40 transactions every 4 ms (10 k/s; the source looks quiet between hand-overs: adaptive commits)
 * FERRY_ONEROW_TXNS (default 100000), FERRY_ONEROW_ROUNDS (default 3), FERRY_ONEROW_COMMIT_MS (default 1).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

type Mode = { name: string; perBatch: number; gapMs: number };
const MODES: Mode[] = [
  { name: 'flood-1', perBatch: 1, gapMs: 0 },
  { name: 'flood-16', perBatch: 16, gapMs: 0 },
  { name: 'paced-4ms', perBatch: 40, gapMs: 4 },
];

const env = process.env;
const TXNS = Number(env.FERRY_ONEROW_TXNS ?? 100_000);
const ROUNDS = Number(env.FERRY_ONEROW_ROUNDS ?? 3);
const COMMIT_MS = Number(env.FERRY_ONEROW_COMMIT_MS ?? 1);
const WARMUP = Math.min(20_000, TXNS);
const HARNESS = 'harness';

interface Result {
  cpuUs: number;
  sysUs?: number;
  wallMs: number;
  txns: number;
  commits: number;
  acks: number;
}

function lsn(n: number): string {
  return `0/${n.toString(16).toUpperCase()}`;
}

/**
 * begin, insert, commit per transaction, transactions `from` to `to`: the shapes the PostgreSQL source emits, made
 * per hand-over as a decoder makes them (a heap of pre-made events would charge its GC marking to the streamer).
 */
function script(from: number, to: number, base: number): unknown[] {
  const events: unknown[] = [];
  for (let i = from; i < to; i++) {
    const at = base + i * 64;
    events.push({ kind: 'begin', position: lsn(at + 40), time: 1_700_000_000_000 + i });
    events.push({ kind: 'change', change: { op: 'insert', table: 'public.t', row: { id: String(i), v: 'value ' + i } } });
    events.push({ kind: 'commit', position: lsn(at + 48), time: 1_700_000_000_000 + i });
  }
  return events;
}

/** The harness alone (scripted source, no streamer): its CPU is the floor under every tree's figure. */
async function harness(mode: Mode): Promise<void> {
  const per = mode.perBatch;
  let seen = 0;
  const onEvents = async (e: unknown[]) => {
    seen += e.length;
  };
  const started = process.cpuUsage();
  const startWall = performance.now();
  for (let i = 0; i < TXNS; i += per) {
    await onEvents(script(i, Math.min(TXNS, i + per), 0x2000_0000));
    await new Promise((r) => (mode.gapMs > 0 ? setTimeout(r, mode.gapMs) : setImmediate(r)));
  }
  const cpu = process.cpuUsage(started);
  const r: Result = { cpuUs: cpu.user + cpu.system, sysUs: cpu.system, wallMs: performance.now() - startWall, txns: seen / 3, commits: 0, acks: 0 };
  process.stdout.write(JSON.stringify(r) + '\n');
}

async function child(root: string, mode: Mode): Promise<void> {
  if (root === HARNESS) return harness(mode);
  const { runStreamer } = (await import(pathToFileURL(join(root, 'src/core/cdc/streamer.ts')).href)) as typeof import('../src/core/cdc/streamer.js');
  const { SqliteStateStore } = (await import(pathToFileURL(join(root, 'src/adapters/sqlite/sqlite-state-store.ts')).href)) as typeof import('../src/adapters/sqlite/sqlite-state-store.js');
  const { compareLsn } = (await import(pathToFileURL(join(root, 'src/adapters/postgres/cdc/lsn.ts')).href)) as typeof import('../src/adapters/postgres/cdc/lsn.js');
  const dir = mkdtempSync(join(tmpdir(), 'onerow-'));
  const table = {
    source: { schema: 'public', name: 't' },
    target: { schema: 'public', name: 't' },
    columns: [],
    primaryKey: ['id'],
    estimatedRows: 0,
    estimatedBytes: 0,
    extra: null,
  };
  const run = async (flow: string, txns: number, base: number): Promise<Result> => {
    const store = new SqliteStateStore(join(dir, `${flow}.db`));
    await store.putCheckpoint(flow, 'cdc', lsn(base));
    const last = (script(txns - 1, txns, base + 64).at(-1) as { position: string }).position;
    const ac = new AbortController();
    let commits = 0;
    let acks = 0;
    let started = process.cpuUsage();
    let startWall = 0;
    let done: Result | undefined;
    const target = {
      capabilities: {},
      appliedPosition: async () => undefined,
      begin: async () => ({
        apply: async () => [],
        upsert: async () => {},
        commit: async () => {
          commits++;
          if (COMMIT_MS > 0) await new Promise((r) => setTimeout(r, COMMIT_MS));
        },
        rollback: async () => {},
      }),
      close: async () => {},
    };
    const source = {
      compare: (a: string, b: string) => compareLsn(a, b),
      acknowledge: async (p: string) => {
        acks++;
        if (compareLsn(p, last) >= 0 && !done) {
          const cpu = process.cpuUsage(started);
          done = { cpuUs: cpu.user + cpu.system, sysUs: cpu.system, wallMs: performance.now() - startWall, txns, commits, acks };
          ac.abort();
        }
      },
      fetchRows: async () => [],
      async stream(_f: string, _t: unknown, _from: unknown, onEvents: (e: unknown[]) => Promise<void>, signal: AbortSignal) {
        const per = mode.perBatch;
        started = process.cpuUsage();
        startWall = performance.now();
        for (let i = 0; i < txns && !signal.aborted; i += per) {
          await onEvents(script(i, Math.min(txns, i + per), base + 64));
          await new Promise((r) => (mode.gapMs > 0 ? setTimeout(r, mode.gapMs) : setImmediate(r)));
        }
        if (!signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
      },
    };
    await runStreamer(
      { source: source as never, target: target as never, store },
      { flow, tables: [table as never], signal: ac.signal, onApplied: () => {}, onLag: () => {} },
    );
    if (!done) throw new Error('the streamer ended before acknowledging the last transaction');
    return done;
  };
  await run('warmup', WARMUP, 0x1000_0000);
  const r = await run('measured', TXNS, 0x2000_0000);
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(r) + '\n');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function parent(roots: string[]): void {
  const wanted = (env.FERRY_ONEROW_MODES ?? MODES.map((m) => m.name).join(',')).split(',').filter(Boolean);
  const modes = MODES.filter((m) => wanted.includes(m.name));
  const load = () => (spawnSync('cat', ['/proc/loadavg']).stdout.toString().split(' ').slice(0, 3).join(' '));
  console.log(`machine-onerow: ${TXNS} one-row transactions per run, commit ${COMMIT_MS} ms, ${ROUNDS} rounds; load average ${load()}`);
  const table: Record<string, Record<string, number[]>> = {};
  for (const mode of modes) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const root of roots) {
        const p = spawnSync(process.execPath, ['--import', 'tsx', import.meta.filename, '--child', root, mode.name], {
          env: { ...env },
          encoding: 'utf8',
          maxBuffer: 1 << 20,
        });
        if (p.status !== 0) throw new Error(`child failed for ${root} ${mode.name}:\n${p.stderr}`);
        const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as Result;
        const us = r.cpuUs / r.txns;
        ((table[mode.name] ??= {})[root] ??= []).push(us);
        console.log(
          `  ${mode.name.padEnd(10)} ${root.padEnd(28)} ${us.toFixed(2).padStart(7)} µs CPU/txn (sys ${((r.sysUs ?? 0) / r.txns).toFixed(2)})  wall ${(r.wallMs / 1000).toFixed(2)} s  ` +
            `${r.commits} commits, ${r.acks} acks`,
        );
      }
    }
  }
  console.log(`medians (µs CPU per one-row transaction; load average now ${load()}):`);
  for (const [mode, byRoot] of Object.entries(table)) {
    const meds = roots.map((r) => median(byRoot[r] ?? []));
    const cells = roots.map((r, i) => `${r}: ${meds[i]!.toFixed(2)} (${Math.min(...byRoot[r]!).toFixed(2)}–${Math.max(...byRoot[r]!).toFixed(2)})`);
    const trees = roots.filter((r) => r !== HARNESS);
    const floor = byRoot[HARNESS] ? median(byRoot[HARNESS]) : 0;
    const own = trees.map((r) => median(byRoot[r] ?? []) - floor);
    const ratio = trees.length > 1 ? `  first/last ${(own[0]! / own.at(-1)!).toFixed(2)}× (harness subtracted)` : '';
    console.log(`  ${mode.padEnd(10)} ${cells.join('  ')}${ratio}`);
  }
}

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const mode = MODES.find((m) => m.name === args[2]);
  if (!mode) throw new Error(`unknown mode ${args[2]}`);
  await child(args[1] === HARNESS ? HARNESS : resolve(args[1]!), mode);
} else {
  const roots = args.length ? args.map((a) => resolve(a)) : [resolve(import.meta.dirname, '..')];
  // The harness's own CPU (the scripted source) is in every figure: measured too, so it can be subtracted.
  parent(env.FERRY_ONEROW_HARNESS === '0' ? roots : [...roots, HARNESS]);
}
