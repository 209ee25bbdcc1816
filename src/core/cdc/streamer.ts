/**
 * The CDC streamer: applies source transactions to the target in order, in target transactions batched by time
 * (about `batchMs`) or size, and moves the checkpoint only after the target committed.
 *
 * Contracts it relies on and keeps:
 * - The target records the applied position in the same transaction as the changes, so a restart from an older
 *   checkpoint skips transactions the target already has, and replays the rest (each change converges anyway).
 * - The checkpoint, then the source acknowledgement, follow each target commit, never precede it.
 * - A source transaction is never split across target commits: a huge one streams into one open target
 *   transaction, `applyChunk` changes at a time, so memory stays bounded while the source is paused by awaiting.
 * - Any failure stops the stream without acknowledging anything after the last commit.
 */
import { FerryError } from '../errors.js';
import type { Position, TableSchema } from '../model.js';
import type { Change, ChangeSource, RowImage, StreamEvent } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';
import { Serial } from './serial.js';

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
  /** Changes handed to the target per call while a transaction is open (the memory bound). */
  applyChunk?: number;
  /** Commit at the next transaction boundary once this many changes are open. */
  commitChanges?: number;
  /** Stop: commit at the next transaction boundary (or roll back after `stopGraceMs`), then return. */
  signal: AbortSignal;
  stopGraceMs?: number;
  /** Polled about once a second: when it yields a position, return once everything up to it is applied. */
  drainTo?: () => Promise<Position | undefined>;
  onApplied?: (info: AppliedInfo) => void;
}

export interface StreamerDeps {
  source: ChangeSource;
  target: ChangeTarget;
  store: StateStore;
}

export async function runStreamer(deps: StreamerDeps, opts: StreamerOptions): Promise<{ position: Position }> {
  const { source, target, store } = deps;
  const batchMs = opts.batchMs ?? 1000;
  const applyChunk = opts.applyChunk ?? 5000;
  const commitChanges = opts.commitChanges ?? 200_000;
  const start = await store.getCheckpoint(opts.flow, CDC_CHECKPOINT);
  if (start === undefined) {
    throw new FerryError(`flow ${opts.flow} has no CDC start position`, 'run the flow with mode snapshot+cdc from the start');
  }
  const applied = await target.appliedPosition(opts.flow);
  const tables = new Map(opts.tables.map((t) => [`${t.source.schema}.${t.source.name}`, t]));

  const serial = new Serial();
  const end = new AbortController();
  let failure: unknown;
  let batch: ApplyBatch | undefined;
  let pending: Change[] = [];
  let inTxn = false;
  let skipping = false;
  let openedAt = 0;
  let openChanges = 0;
  let openTxns = 0;
  let lastCommit: { position: Position; time: number } | undefined;
  let idle: { position: Position; time: number } | undefined;
  let acked: Position = start;
  let stopSince: number | undefined;
  let drainTarget: Position | undefined;
  let lastDrainPoll = 0;

  const later = (a: Position, b: Position) => source.compare(a, b) > 0;

  const advance = async (position: Position, time: number, changes: number, transactions: number) => {
    await store.putCheckpoint(opts.flow, CDC_CHECKPOINT, position);
    await source.acknowledge(position);
    acked = position;
    const info = { position, sourceTime: time, appliedAt: Date.now(), changes, transactions };
    await store.putCheckpoint(opts.flow, CDC_LAG, { sourceTime: info.sourceTime, appliedAt: info.appliedAt });
    opts.onApplied?.(info);
  };

  const flush = async () => {
    if (!batch || pending.length === 0) return;
    const missing = await batch.apply(pending);
    pending = [];
    if (missing.length) await completeMissing(batch, missing);
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

  const commitBatch = async () => {
    if (!batch || !lastCommit) return;
    await flush();
    await batch.commit(lastCommit.position);
    batch = undefined;
    const done = lastCommit;
    const [changes, txns] = [openChanges, openTxns];
    lastCommit = undefined;
    openChanges = 0;
    openTxns = 0;
    await advance(done.position, done.time, changes, txns);
  };

  const finish = () => end.abort();

  const handle = async (e: StreamEvent) => {
    switch (e.kind) {
      case 'begin':
        inTxn = true;
        // The target already committed this transaction (its commit is before the applied position).
        skipping = applied !== undefined && source.compare(e.position, applied) < 0;
        return;
      case 'change':
        if (skipping) return;
        if (!batch) {
          batch = await target.begin(opts.flow, opts.tables);
          openedAt = Date.now();
        }
        pending.push(e.change);
        openChanges++;
        if (pending.length >= applyChunk) await flush();
        return;
      case 'commit':
        inTxn = false;
        if (skipping || !batch) {
          // Nothing of ours in it (or already applied): the position may advance once nothing is open.
          skipping = false;
          idle = { position: e.position, time: e.time };
          return;
        }
        lastCommit = { position: e.position, time: e.time };
        openTxns++;
        if (Date.now() - openedAt >= batchMs || openChanges >= commitChanges) await commitBatch();
        return;
      case 'heartbeat':
        if (!inTxn) idle = { position: e.position, time: e.time };
        return;
    }
  };

  const tick = async () => {
    const now = Date.now();
    if (batch && lastCommit && !inTxn && now - openedAt >= batchMs) await commitBatch();
    if (!batch && !inTxn && idle && later(idle.position, acked)) {
      const i = idle;
      idle = undefined;
      await advance(i.position, i.time, 0, 0);
    }
    if (opts.drainTo && now - lastDrainPoll >= 1000) {
      lastDrainPoll = now;
      drainTarget ??= await opts.drainTo();
    }
    if (drainTarget !== undefined && !batch && !later(drainTarget, acked)) finish();
    if (opts.signal.aborted) {
      stopSince ??= now;
      if (!inTxn) {
        await commitBatch();
        finish();
      } else if (now - stopSince > (opts.stopGraceMs ?? 5000)) {
        // Mid-transaction for too long: drop the open batch; the checkpoint still marks where to resume.
        await batch?.rollback();
        batch = undefined;
        finish();
      }
    }
  };

  const guarded = (fn: () => Promise<void>) =>
    serial.run(async () => {
      if (failure !== undefined || end.signal.aborted) return;
      try {
        await fn();
      } catch (err) {
        failure = err;
        finish();
      }
    });

  const timer = setInterval(() => void guarded(tick), Math.min(100, batchMs));
  try {
    await source.stream(opts.flow, opts.tables, start, (e) => guarded(() => handle(e)), end.signal);
    if (!end.signal.aborted) failure ??= new Error('the replication stream ended unexpectedly');
  } catch (err) {
    failure ??= err;
  } finally {
    clearInterval(timer);
    await serial.run(async () => {});
    await batch?.rollback();
  }
  if (failure !== undefined) throw failure;
  return { position: acked };
}
