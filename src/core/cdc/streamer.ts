/**
 * The CDC streamer: applies source transactions to the target in order, in target transactions batched by time
 * (about `batchMs`) or size, and moves the checkpoint only after the target committed.
 *
 * Two sides, so that decoding on the source and applying on the target overlap:
 * - the read side takes events as the source delivers them and decides what to do (batch, commit, skip);
 * - the apply lane runs those decisions on the target strictly in order, one at a time, on one transaction.
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
import type { HookResult, StreamHooks } from './evolve-contract.js';

export const CDC_CHECKPOINT = 'cdc';
export const CDC_LAG = 'cdc-lag';

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
  /** Tables a hook paused, and changes of tables the flow does not know (dropped). */
  onWarn?: (message: string) => void;
}

export interface StreamerDeps {
  source: ChangeSource;
  target: ChangeTarget;
  store: StateStore;
  /** Schema/partition/table-set hooks (NOTES.md contract), called in the apply lane in stream order. */
  hooks?: StreamHooks;
}

/** Approximate memory of a change: its values' lengths plus a per-column overhead. */
function changeBytes(c: Change): number {
  if (c.op === 'truncate') return 64;
  let n = 64;
  const images = c.op === 'insert' ? [c.row] : c.op === 'delete' ? [c.old] : [c.row, c.old];
  for (const img of images) {
    if (!img) continue;
    for (const k in img) n += 32 + (img[k]?.length ?? 0);
  }
  return n;
}

export async function runStreamer(deps: StreamerDeps, opts: StreamerOptions): Promise<{ position: Position }> {
  const { source, target, store } = deps;
  const batchMs = opts.batchMs ?? 500;
  const applyChunk = opts.applyChunk ?? 5_000;
  const applyChunkBytes = opts.applyChunkBytes ?? 8 << 20;
  const maxBacklogBytes = opts.maxBacklogBytes ?? 2 * applyChunkBytes;
  const commitChanges = opts.commitChanges ?? 500_000;
  const start = await store.getCheckpoint(opts.flow, CDC_CHECKPOINT);
  if (start === undefined) {
    throw new FerryError(`flow ${opts.flow} has no CDC start position`, 'run the flow with mode snapshot+cdc from the start');
  }
  const applied = await target.appliedPosition(opts.flow);
  const tables = new Map(opts.tables.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
  const paused = new Set<string>();
  const unknownWarned = new Set<string>();
  /** Apply-time filter: a hook may have paused a table, and changes of tables nobody introduced are dropped. */
  const live = (table: string) => {
    if (paused.has(table)) return false;
    if (tables.has(table)) return true;
    if (!unknownWarned.has(table)) opts.onWarn?.(`changes of ${table}, which is not part of flow ${opts.flow}, are skipped`);
    unknownWarned.add(table);
    return false;
  };
  const takeResult = async (b: ApplyBatch, r: HookResult | void) => {
    if (!r) return;
    for (const t of r.tables ?? []) tables.set(`${t.source.schema}.${t.source.name}`, t);
    for (const p of r.pause ?? []) {
      if (!paused.has(p.table)) opts.onWarn?.(p.reason);
      paused.add(p.table);
    }
    if (r.changes?.length) await b.apply(r.changes);
  };
  const later = (a: Position, b: Position) => source.compare(a, b) > 0;
  const end = new AbortController();
  const finish = () => end.abort();
  let failure: unknown;

  // ---- the apply lane: target side, strictly ordered ----
  const lane = new Serial();
  let backlog = 0;
  let laneTail: Promise<void> = Promise.resolve();
  let batch: ApplyBatch | undefined;
  let acked: Position = start;

  const schedule = (bytes: number, op: () => Promise<void>) => {
    backlog += bytes;
    laneTail = lane.run(async () => {
      try {
        if (failure === undefined) await op();
      } catch (err) {
        failure ??= err;
        finish();
      } finally {
        backlog -= bytes;
      }
    });
    return laneTail;
  };

  const advance = async (position: Position, time: number, changes: number, transactions: number) => {
    await store.putCheckpoint(opts.flow, CDC_CHECKPOINT, position);
    await source.acknowledge(position);
    acked = position;
    const info = { position, sourceTime: time, appliedAt: Date.now(), changes, transactions };
    await store.putCheckpoint(opts.flow, CDC_LAG, { sourceTime: info.sourceTime, appliedAt: info.appliedAt });
    opts.onApplied?.(info);
  };

  /** Rows an update could not complete on the target: read them from the source now and upsert them. */
  const completeMissing = async (b: ApplyBatch, missing: MissingRow[]) => {
    const byTable = new Map<string, RowImage[]>();
    for (const m of missing) byTable.set(m.table, [...(byTable.get(m.table) ?? []), m.key]);
    for (const [table, keys] of byTable) {
      const schema = tables.get(table);
      if (schema) await b.upsert(table, await source.fetchRows(schema, keys));
    }
  };

  // ---- the read side ----
  let pending: Change[] = [];
  let pendingBytes = 0;
  let open = false; // changes scheduled (or pending) since the last scheduled commit
  let openedAt = 0;
  let openChanges = 0;
  let openTxns = 0;
  let lastCommit: { position: Position; time: number } | undefined;
  let inTxn = false;
  let skipping = false;
  let idle: { position: Position; time: number } | undefined;
  let scheduledAck: Position = start;
  let stopSince: number | undefined;
  let drainTarget: Position | undefined;
  let lastDrainPoll = 0;

  const scheduleApply = () => {
    if (pending.length === 0) return;
    const chunk = pending;
    const bytes = pendingBytes;
    pending = [];
    pendingBytes = 0;
    schedule(bytes, async () => {
      batch ??= await target.begin(opts.flow, [...tables.values()]);
      const kept: Change[] = [];
      for (const c of chunk) {
        if (c.op !== 'truncate') {
          if (live(c.table)) kept.push(c);
        } else {
          const ts = c.tables.filter(live);
          if (ts.length) kept.push({ ...c, tables: ts });
        }
      }
      const missing = await batch.apply(kept);
      if (missing.length) await completeMissing(batch, missing);
    });
  };

  const scheduleCommit = () => {
    if (!open || !lastCommit) return;
    scheduleApply();
    const done = lastCommit;
    const [changes, txns] = [openChanges, openTxns];
    schedule(0, async () => {
      if (batch) await batch.commit(done.position);
      batch = undefined;
      await advance(done.position, done.time, changes, txns);
    });
    scheduledAck = done.position;
    open = false;
    openChanges = 0;
    openTxns = 0;
    lastCommit = undefined;
  };

  const handleAll = async (events: StreamEvent[]) => {
    for (const e of events) {
      handle(e);
      if (backlog > maxBacklogBytes) await laneTail; // backpressure: the source waits while the target catches up
    }
  };

  /** Synchronous: decides and schedules; the apply lane does the waiting. */
  const handle = (e: StreamEvent): void => {
    switch (e.kind) {
      case 'begin':
        inTxn = true;
        // The target already committed this transaction (its commit is before the applied position).
        skipping = applied !== undefined && source.compare(e.position, applied) < 0;
        return;
      case 'change':
        if (skipping) return;
        if (!open) {
          open = true;
          openedAt = Date.now();
        }
        pending.push(e.change);
        pendingBytes += changeBytes(e.change);
        openChanges++;
        if (pending.length >= applyChunk || pendingBytes >= applyChunkBytes) scheduleApply();
        return;
      case 'commit':
        inTxn = false;
        if (skipping || !open) {
          // Nothing of ours in it (or already applied): the position may advance once nothing is open.
          skipping = false;
          idle = { position: e.position, time: e.time };
          return;
        }
        lastCommit = { position: e.position, time: e.time };
        openTxns++;
        if (Date.now() - openedAt >= batchMs || openChanges >= commitChanges) scheduleCommit();
        return;
      case 'heartbeat':
        if (!inTxn) idle = { position: e.position, time: e.time };
        return;
      case 'relation':
      case 'message': {
        if (skipping || !deps.hooks) return;
        // In stream order: what is pending goes first, then the hook, inside the open batch, which must commit.
        if (!open) {
          open = true;
          openedAt = Date.now();
        }
        scheduleApply();
        const hooks = deps.hooks;
        schedule(0, async () => {
          batch ??= await target.begin(opts.flow, [...tables.values()]);
          const r =
            e.kind === 'relation'
              ? await hooks.onRelation?.(e.relation, batch)
              : await hooks.onMessage?.({ prefix: e.prefix, content: e.content, position: e.position }, batch);
          await takeResult(batch, r);
        });
        if (!inTxn && e.kind === 'message') {
          // A non-transactional message: commit what it did at its own position.
          lastCommit = { position: e.position, time: Date.now() };
          openTxns++;
        }
        return;
      }
    }
  };

  const tick = async () => {
    const now = Date.now();
    if (open && lastCommit && !inTxn && now - openedAt >= batchMs) scheduleCommit();
    if (!open && !inTxn && idle && later(idle.position, scheduledAck)) {
      const i = idle;
      idle = undefined;
      scheduledAck = i.position;
      schedule(0, () => advance(i.position, i.time, 0, 0));
    }
    if (opts.drainTo && now - lastDrainPoll >= 1000) {
      lastDrainPoll = now;
      drainTarget ??= await opts.drainTo();
    }
    if (drainTarget !== undefined && !open && backlog === 0 && !later(drainTarget, acked)) {
      await laneTail;
      finish();
    }
    if (opts.signal.aborted) {
      stopSince ??= now;
      if (!inTxn) {
        scheduleCommit();
        await laneTail; // acknowledged before the stream closes
        finish();
      } else if (now - stopSince > (opts.stopGraceMs ?? 5000)) {
        // Mid-transaction for too long: drop the open batch; the checkpoint still marks where to resume.
        pending = [];
        pendingBytes = 0;
        schedule(0, async () => {
          await batch?.rollback();
          batch = undefined;
        });
        await laneTail;
        finish();
      }
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
    await batch?.rollback();
  }
  if (failure !== undefined) throw failure;
  return { position: acked };
}
