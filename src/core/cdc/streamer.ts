/**
 * The CDC streamer's executor: runs the decisions of the state machine (stream-machine.ts). Source transactions are
 * applied to the target in order, in target transactions batched by time (about `batchMs`) or size, and the
 * checkpoint moves only after the target committed.
 *
 * Two sides, so that decoding on the source and applying on the target overlap:
 * - the read side feeds events and timer ticks to the machine, which decides (batch, commit, skip, confirm);
 * - the apply lane runs those actions on the target strictly in order, one at a time, on one transaction.
 * The read side awaits the lane only when more than `maxBacklogBytes` of changes wait there, which pauses the
 * source (backpressure), so memory stays bounded however large a transaction is.
 *
 * Contracts it relies on and keeps:
 * - The target records the applied position in the same transaction as the changes, so a restart from an older
 *   checkpoint skips transactions the target already has, and replays the rest (each change converges anyway).
 * - The checkpoint, then the source acknowledgement, follow each target commit, never precede it.
 * - A source transaction is never split across target commits: a huge one streams into one open target
 *   transaction, `applyChunk` changes at a time.
 * - Any failure stops the stream without acknowledging anything after the last commit.
 */
import { FerryError } from '../errors.js';
import type { Position, TableSchema } from '../model.js';
import type { Change, ChangeSource, RowImage, StreamEvent } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';
import { Serial } from './serial.js';
import { StreamMachine, type StreamAction } from './stream-machine.js';
import type { StreamHooks } from './stream-hooks.js';

export type { HookResult, StreamHooks } from './stream-hooks.js';

export const CDC_CHECKPOINT = 'cdc';
export const CDC_LAG = 'cdc-lag';
/**
 * Written by the streaming runtime every few seconds and on every warning: `{ at, lagMs, position, reconnects,
 * warning?: { at, message } }`. A reader adds the record's age to `lagMs` once it is stale (the streamer stopped
 * updating it), so the lag it shows keeps growing while nothing arrives or nothing commits.
 */
export const CDC_LIVE = 'cdc-live';

export interface LiveStatus {
  at: number;
  lagMs: number;
  position: string;
  reconnects: number;
  warning?: { at: number; message: string };
}

export interface AppliedInfo {
  position: Position;
  /** Source commit time (ms) of the last applied transaction or heartbeat. */
  sourceTime: number;
  appliedAt: number;
  changes: number;
  transactions: number;
}

export interface StreamerOptions {
  flow: string;
  tables: TableSchema[];
  batchMs?: number;
  /** Changes handed to the target per call while a transaction is open (or fewer, see `applyChunkBytes`). */
  applyChunk?: number;
  /** Bytes of row values per apply call: wide rows (TOASTed values) make smaller chunks. */
  applyChunkBytes?: number;
  /** Bytes of changes that may wait for the apply lane before the source is paused (the memory bound). */
  maxBacklogBytes?: number;
  /** Commit at the next transaction boundary once this many changes are open. */
  commitChanges?: number;
  /** Stop: commit at the next transaction boundary (or roll back after `stopGraceMs`), then return. */
  signal: AbortSignal;
  stopGraceMs?: number;
  /** Polled about once a second: when it yields a position, return once everything up to it is applied. */
  drainTo?: () => Promise<Position | undefined>;
  onApplied?: (info: AppliedInfo) => void;
  /**
   * About once a second: how far behind the source the target is known to be, in ms: from the oldest change
   * received and not yet committed, or (nothing pending) from the source time of the last position confirmed. It
   * grows while nothing arrives and while nothing commits.
   */
  onLag?: (lagMs: number, position: Position) => void;
  /** Warnings (a table paused by a hook). */
  warn?: (message: string) => void;
}

export interface StreamerDeps {
  source: ChangeSource;
  target: ChangeTarget;
  store: StateStore;
  hooks?: StreamHooks;
}

export async function runStreamer(deps: StreamerDeps, opts: StreamerOptions): Promise<{ position: Position }> {
  const { source, target, store, hooks } = deps;
  const batchMs = opts.batchMs ?? 500;
  const applyChunkBytes = opts.applyChunkBytes ?? 8 << 20;
  const maxBacklogBytes = opts.maxBacklogBytes ?? 2 * applyChunkBytes;
  const start = await store.getCheckpoint(opts.flow, CDC_CHECKPOINT);
  if (start === undefined) {
    throw new FerryError(`flow ${opts.flow} has no CDC start position`, 'run the flow with mode snapshot+cdc from the start');
  }
  const applied = await target.appliedPosition(opts.flow);
  const tables = new Map(opts.tables.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
  const machine = new StreamMachine({
    tables: tables.keys(),
    applied,
    start,
    compare: (a, b) => source.compare(a, b),
    batchMs,
    applyChunk: opts.applyChunk ?? 5_000,
    applyChunkBytes,
    commitChanges: opts.commitChanges ?? 500_000,
    stopGraceMs: opts.stopGraceMs ?? 5000,
    hooks: { relation: Boolean(hooks?.onRelation), message: Boolean(hooks?.onMessage) },
  });
  const end = new AbortController();
  const finish = () => end.abort();
  let failure: unknown;

  // ---- the apply lane: target side, strictly ordered ----
  const lane = new Serial();
  let backlog = 0;
  let laneOps = 0;
  let laneTail: Promise<void> = Promise.resolve();
  let batch: ApplyBatch | undefined;
  /** Source times of commits scheduled and not yet done, oldest first (for lag). */
  const inflight: number[] = [];
  let confirmedTime: number | undefined;

  const schedule = (bytes: number, op: () => Promise<void>) => {
    backlog += bytes;
    laneOps++;
    laneTail = lane.run(async () => {
      try {
        if (failure === undefined) await op();
      } catch (err) {
        failure ??= err;
        finish();
      } finally {
        backlog -= bytes;
        laneOps--;
      }
    });
    return laneTail;
  };

  const advance = async (position: Position, time: number, changes: number, transactions: number) => {
    await store.putCheckpoint(opts.flow, CDC_CHECKPOINT, position);
    await source.acknowledge(position);
    machine.acknowledged(position);
    confirmedTime = time;
    const info = { position, sourceTime: time, appliedAt: Date.now(), changes, transactions };
    await store.putCheckpoint(opts.flow, CDC_LAG, { sourceTime: info.sourceTime, appliedAt: info.appliedAt });
    opts.onApplied?.(info);
  };

  const open = async () => (batch ??= await target.begin(opts.flow, [...tables.values()]));

  /** Rows an update could not complete on the target: read them from the source now and upsert them. */
  const completeMissing = async (b: ApplyBatch, missing: MissingRow[]) => {
    const byTable = new Map<string, RowImage[]>();
    for (const m of missing) byTable.set(m.table, [...(byTable.get(m.table) ?? []), m.key]);
    for (const [table, keys] of byTable) {
      const schema = tables.get(table);
      if (schema) await b.upsert(table, await source.fetchRows(schema, keys));
    }
  };

  const applyIn = async (b: ApplyBatch, changes: Change[], at?: Position) => {
    const missing = await b.apply(changes, at);
    if (missing.length) await completeMissing(b, missing);
  };

  const runHook = async (event: Extract<StreamAction, { type: 'hook' }>['event']) => {
    const b = await open();
    const result =
      event.kind === 'relation'
        ? await hooks?.onRelation?.(event.relation, b)
        : await hooks?.onMessage?.({ prefix: event.prefix, content: event.content, position: event.position }, b);
    if (!result) return;
    for (const t of result.tables ?? []) tables.set(`${t.source.schema}.${t.source.name}`, t);
    if (result.tables?.length) b.updateTables?.([...tables.values()]);
    machine.hookDone({ tables: result.tables?.map((t) => `${t.source.schema}.${t.source.name}`), pause: result.pause });
    for (const p of result.pause ?? []) opts.warn?.(`table ${p.table} is paused (its changes are no longer applied): ${p.reason}`);
    if (result.changes?.length) await applyIn(b, result.changes);
  };

  /** Runs the machine's actions in order; waits only for hooks (their result decides what follows) and the end. */
  const perform = async (actions: StreamAction[]) => {
    for (const a of actions) {
      switch (a.type) {
        case 'apply':
          schedule(a.bytes, async () => applyIn(await open(), a.changes, a.at));
          break;
        case 'commit':
          inflight.push(a.time);
          schedule(0, async () => {
            if (batch) await batch.commit(a.position);
            batch = undefined;
            inflight.shift();
            await advance(a.position, a.time, a.changes, a.transactions);
          });
          break;
        case 'advance':
          schedule(0, () => advance(a.position, a.time, 0, 0));
          break;
        case 'hook':
          await schedule(0, () => runHook(a.event));
          break;
        case 'rollback':
          schedule(0, async () => {
            await batch?.rollback();
            batch = undefined;
          });
          break;
        case 'paused':
          opts.warn?.(`a change of paused table ${a.table} was dropped: ${a.reason}`);
          break;
        case 'finish':
          await laneTail;
          finish();
          break;
      }
    }
  };

  const handleAll = async (events: StreamEvent[]) => {
    for (const e of events) {
      const actions = machine.event(e, Date.now());
      if (actions.length) await perform(actions);
      if (backlog > maxBacklogBytes) await laneTail; // backpressure: the source waits while the target catches up
    }
  };

  let drainTarget: Position | undefined;
  let lastDrainPoll = 0;
  let lastLag = 0;
  const tick = async () => {
    const now = Date.now();
    if (opts.drainTo && now - lastDrainPoll >= 1000) {
      lastDrainPoll = now;
      drainTarget ??= await opts.drainTo();
    }
    await perform(machine.tick({ now, stopping: opts.signal.aborted, drainTo: drainTarget, laneIdle: laneOps === 0 }));
    if (opts.onLag && now - lastLag >= 1000) {
      lastLag = now;
      const oldest = inflight[0] ?? machine.openSince ?? confirmedTime;
      if (oldest !== undefined) opts.onLag(Math.max(0, now - oldest), machine.acknowledgedPosition);
    }
  };

  const reader = new Serial();
  const guarded = (fn: () => Promise<void>) =>
    reader.run(async () => {
      if (failure !== undefined || end.signal.aborted) return;
      try {
        await fn();
      } catch (err) {
        failure ??= err;
        finish();
      }
    });

  const timer = setInterval(() => void guarded(tick), Math.min(100, batchMs));
  try {
    await source.stream(opts.flow, opts.tables, start, (events) => guarded(() => handleAll(events)), end.signal);
    if (!end.signal.aborted) failure ??= new Error('the replication stream ended unexpectedly');
  } catch (err) {
    failure ??= err;
  } finally {
    clearInterval(timer);
    await reader.run(async () => {});
    await lane.run(async () => {});
    await batch?.rollback().catch(() => {});
  }
  if (failure !== undefined) throw failure;
  return { position: machine.acknowledgedPosition };
}
