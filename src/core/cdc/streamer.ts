/**
 * The CDC streamer's executor: runs the decisions of the state machine (stream-machine.ts). Source transactions are
 * applied to the target in order, in target transactions batched by time (about `batchMs`), size, or at once when
 * the source goes quiet (adaptive: low lag when idle, large groups when busy), and the checkpoint moves only after
 * the target committed.
 *
 * Two sides, so that decoding on the source and applying on the target overlap:
 * - the read side feeds events and timer ticks to the machine, which decides (batch, commit, skip, confirm);
 * - apply lanes run those actions on the target, each lane strictly in order, one at a time. One lane by default
 *   (consistency: transaction); with consistency: table, `lanes` lanes each with its own batch (tables routed by a
 *   hash, lane-layout.ts). Streamed in-progress transactions have a batch each, run on lane 0's queue.
 * The read side awaits the lanes only when more than `maxBacklogBytes` of changes wait there, which pauses the
 * source (backpressure), so memory stays bounded however large a transaction is.
 * A lane's operation may wait for a row lock another lane's open batch holds, but only when that batch's commit is
 * already queued (the machine commits every lane before a transaction that spans them), so waits always end.
 *
 * Contracts it relies on and keeps:
 * - The target records the applied position in the same transaction as the changes, so a restart from an older
 *   checkpoint skips transactions the target already has, and replays the rest (each change converges anyway).
 * - The checkpoint, then the source acknowledgement, follow the target commits, never precede them: with several
 *   lanes, the acknowledged position is the end of the longest prefix of the stream that every lane committed.
 * - A source transaction is never split across target commits: a huge one streams into one open target
 *   transaction, `applyChunk` changes at a time.
 * - Any failure stops the stream without acknowledging anything after the last commit.
 */
import { FerryError } from '../errors.js';
import type { Position, TableSchema } from '../model.js';
import type { Change, ChangeSource, RowImage, StreamEvent } from '../ports/change-source.js';
import type { ApplyBatch, ChangeTarget, MissingRow } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';
import { laneOf, resolveLanes } from './lane-layout.js';
import { Serial } from './serial.js';
import { StreamMachine, type BatchRef, type StreamAction } from './stream-machine.js';
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
  /** Bytes a streamed transaction waiting for a target connection may hold (default 4 × maxBacklogBytes). */
  maxHeldBytes?: number;
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
  /**
   * `transaction` (default): one lane, whole source transactions in order, every target state one the source had.
   * `table`: `lanes` lanes, tables routed by a hash; each table's state is one the source had, a cross-table view
   * may mix moments.
   */
  consistency?: 'transaction' | 'table';
  /** Apply lanes with consistency: table (default 4). The target needs lanes + maxStreams + 1 connections. */
  lanes?: number;
  /** Streamed in-progress transactions with a target batch (a connection) of their own at once (default 4). */
  maxStreams?: number;
  /** The source counts as quiet when no events arrived for this long (ms): complete transactions commit at once. */
  quietMs?: number;
  /** A lane's quiet commits are at least this far apart (ms, default 10): bursts of tiny transactions still group. */
  minCommitGapMs?: number;
}

/** Target connections the streamer may hold at once (lanes, streamed transactions, one spare). */
/** Takes the streamer's options or the config's `cdc` section (`maxStreamedTransactions`). */
export function streamerConnections(opts: {
  consistency?: 'transaction' | 'table';
  lanes?: number;
  maxStreams?: number;
  maxStreamedTransactions?: number;
}): number {
  const lanes = opts.consistency === 'table' ? Math.max(1, opts.lanes ?? 4) : 1;
  return lanes + Math.max(1, opts.maxStreams ?? opts.maxStreamedTransactions ?? 4) + 1;
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
  const quietMs = opts.quietMs ?? 3;
  const minCommitGapMs = opts.minCommitGapMs ?? 10;
  const applyChunkBytes = opts.applyChunkBytes ?? 8 << 20;
  const maxBacklogBytes = opts.maxBacklogBytes ?? 2 * applyChunkBytes;
  const nLanes = opts.consistency === 'table' ? Math.max(1, opts.lanes ?? 4) : 1;
  const start = await store.getCheckpoint(opts.flow, CDC_CHECKPOINT);
  if (start === undefined) {
    throw new FerryError(`flow ${opts.flow} has no CDC start position`, 'run the flow with mode snapshot+cdc from the start');
  }
  const compare = (a: Position, b: Position) => source.compare(a, b);
  const layout = await resolveLanes({ store, target }, opts.flow, nLanes, compare);
  const tables = new Map(opts.tables.map((t) => [`${t.source.schema}.${t.source.name}`, t]));
  const machine = new StreamMachine({
    tables: tables.keys(),
    applied: layout.applied[0],
    laneApplied: layout.applied,
    lanes: nLanes,
    laneOf: (t) => laneOf(t, nLanes),
    maxStreams: Math.max(1, opts.maxStreams ?? 4),
    start,
    compare,
    batchMs,
    applyChunk: opts.applyChunk ?? 5_000,
    applyChunkBytes,
    maxHeldBytes: opts.maxHeldBytes ?? maxBacklogBytes * 4,
    minCommitGapMs,
    commitChanges: opts.commitChanges ?? 500_000,
    stopGraceMs: opts.stopGraceMs ?? 5000,
    hooks: { relation: Boolean(hooks?.onRelation), message: Boolean(hooks?.onMessage) },
  });
  const end = new AbortController();
  const finish = () => end.abort();
  let failure: unknown;

  // ---- the apply lanes: target side, each strictly ordered ----
  const lanes = Array.from({ length: nLanes }, () => ({ serial: new Serial(), ops: 0, tail: Promise.resolve() as Promise<void>, committing: 0 }));
  let backlog = 0;
  /** Open target batches: `l<lane>` for a lane's ordinary batch, `x<xid>` for a streamed transaction's. */
  const batches = new Map<string, ApplyBatch>();
  /** Commits scheduled, by id: resolve once done (an advance waits for the ones covering its position). */
  const commits = new Map<number, Promise<void>>();
  /** Source times of commits scheduled and not yet done (for lag). */
  const inflight = new Map<number, number>();
  let confirmedTime: number | undefined;
  let unreported = { changes: 0, transactions: 0 };
  /** Per lane, the last position its batches committed (a clean end brings them all to the final position). */
  const laneCommitted: (Position | undefined)[] = [...layout.applied];
  const acks = new Serial();

  const queueOf = (r: BatchRef) => (r.xid !== undefined ? 0 : (r.lane ?? 0));
  const keyOf = (r: BatchRef) => (r.xid !== undefined ? `x${r.xid}` : `l${r.lane ?? 0}`);

  const schedule = (lane: number, bytes: number, op: () => Promise<void>) => {
    const l = lanes[lane]!;
    backlog += bytes;
    l.ops++;
    l.tail = l.serial.run(async () => {
      try {
        if (failure === undefined) await op();
      } catch (err) {
        failure ??= err;
        finish();
      } finally {
        backlog -= bytes;
        l.ops--;
      }
    });
    return l.tail;
  };
  const allLanes = () => Promise.all(lanes.map((l) => l.tail)).then(() => {});

  const advance = async (position: Position, time: number) => {
    await store.putCheckpoint(opts.flow, CDC_CHECKPOINT, position);
    await source.acknowledge(position);
    machine.acknowledged(position);
    confirmedTime = time;
    const info = { position, sourceTime: time, appliedAt: Date.now(), ...unreported };
    unreported = { changes: 0, transactions: 0 };
    await store.putCheckpoint(opts.flow, CDC_LAG, { sourceTime: info.sourceTime, appliedAt: info.appliedAt });
    opts.onApplied?.(info);
  };

  /** The batch for `r`, begun on first use; a lane's batch records that lane's position, a streamed one lane 0's. */
  const open = async (r: BatchRef) => {
    const key = keyOf(r);
    let b = batches.get(key);
    if (!b) {
      b = await target.begin(layout.keys[r.xid !== undefined ? 0 : (r.lane ?? 0)]!, [...tables.values()]);
      batches.set(key, b);
    }
    return b;
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

  const applyIn = async (b: ApplyBatch, changes: Change[], at?: Position) => {
    const missing = await b.apply(changes, at);
    if (missing.length) await completeMissing(b, missing);
  };

  const runHook = async (r: BatchRef, event: Extract<StreamAction, { type: 'hook' }>['event']) => {
    const b = await open(r);
    const result =
      event.kind === 'relation'
        ? await hooks?.onRelation?.(event.relation, b)
        : await hooks?.onMessage?.({ prefix: event.prefix, content: event.content, position: event.position }, b);
    if (!result) return;
    for (const t of result.tables ?? []) tables.set(`${t.source.schema}.${t.source.name}`, t);
    // Every open batch (other lanes, streamed transactions) applies later changes with the new schemas.
    if (result.tables?.length) for (const ob of batches.values()) ob.updateTables?.([...tables.values()]);
    machine.hookDone({ tables: result.tables?.map((t) => `${t.source.schema}.${t.source.name}`), pause: result.pause });
    for (const p of result.pause ?? []) opts.warn?.(`table ${p.table} is paused (its changes are no longer applied): ${p.reason}`);
    if (result.changes?.length) await applyIn(b, result.changes);
  };

  /** Runs the machine's actions in order; waits only for hooks (their result decides what follows) and the end. */
  const perform = async (actions: StreamAction[]) => {
    for (const a of actions) {
      switch (a.type) {
        case 'apply':
          schedule(queueOf(a), a.bytes, async () => applyIn(await open(a), a.changes, a.at));
          break;
        case 'savepoint':
        case 'rollbackTo':
          schedule(queueOf(a), 0, async () => {
            const b = await open(a);
            if (!b.savepoint || !b.rollbackTo) throw new Error('the target cannot apply streamed transactions (its batches have no savepoints)');
            await (a.type === 'savepoint' ? b.savepoint(a.name) : b.rollbackTo(a.name));
          });
          break;
        case 'commit': {
          const q = queueOf(a);
          const l = lanes[q]!;
          inflight.set(a.id, a.time);
          l.committing++;
          const done = schedule(q, 0, async () => {
            try {
              const key = keyOf(a);
              const b = batches.get(key);
              batches.delete(key);
              if (b) await b.commit(a.position);
              laneCommitted[a.xid !== undefined ? 0 : (a.lane ?? 0)] = a.position;
              unreported.changes += a.changes;
              unreported.transactions += a.transactions;
            } finally {
              l.committing--;
              inflight.delete(a.id);
              quietSoon(); // group commit: what arrived meanwhile may commit now
            }
          });
          if (a.ack) void acks.run(async () => {
            await done;
            if (failure === undefined) await advance(a.position, a.time);
          }).catch(fail);
          else {
            commits.set(a.id, done);
            void done.then(() => commits.delete(a.id)); // an advance scheduled after it is done need not wait
          }
          break;
        }
        case 'advance': {
          const after = (a.after ?? []).map((id) => commits.get(id));
          for (const id of a.after ?? []) commits.delete(id);
          void acks.run(async () => {
            await Promise.all(after);
            if (failure === undefined) await advance(a.position, a.time);
          }).catch(fail);
          break;
        }
        case 'hook':
          await schedule(queueOf(a), 0, () => runHook(a, a.event));
          break;
        case 'rollback':
          schedule(queueOf(a), 0, async () => {
            const key = keyOf(a);
            const b = batches.get(key);
            batches.delete(key);
            await b?.rollback();
          });
          break;
        case 'barrier': {
          const before = Promise.all(lanes.map((l) => l.tail));
          for (let i = 0; i < lanes.length; i++) schedule(i, 0, () => before.then(() => {}));
          break;
        }
        case 'paused':
          opts.warn?.(`a change of paused table ${a.table} was dropped: ${a.reason}`);
          break;
        case 'finish':
          await allLanes();
          await acks.run(async () => {});
          await evenLanes();
          finish();
          break;
      }
    }
  };
  const fail = (err: unknown) => {
    failure ??= err;
    finish();
  };

  /**
   * A clean end with several lanes: lanes that committed less recently record the final position too (an empty
   * batch), so a restart under another layout starts every table exactly there.
   */
  const evenLanes = async () => {
    if (nLanes === 1 || failure !== undefined) return;
    const at = machine.acknowledgedPosition;
    for (let k = 0; k < nLanes; k++) {
      const p = laneCommitted[k];
      if (p !== undefined && compare(p, at) >= 0) continue;
      const b = await target.begin(layout.keys[k]!, [...tables.values()]);
      await b.commit(at);
    }
  };

  const handleAll = async (events: StreamEvent[]) => {
    for (const e of events) {
      const actions = machine.event(e, Date.now());
      if (actions.length) await perform(actions);
      if (backlog > maxBacklogBytes) await allLanes(); // backpressure: the source waits while the target catches up
    }
  };

  let drainTarget: Position | undefined;
  let lastDrainPoll = 0;
  let lastLag = 0;
  /** Events handed over by the source and not yet handled, and when the last ones arrived (adaptive commits). */
  let arriving = 0;
  let lastArrival = 0;
  const sourceIdle = () => arriving === 0 && Date.now() - lastArrival >= quietMs;
  const tick = async () => {
    const now = Date.now();
    if (opts.drainTo && now - lastDrainPoll >= 1000) {
      lastDrainPoll = now;
      drainTarget ??= await opts.drainTo();
    }
    const committing = lanes.flatMap((l, i) => (l.committing > 0 ? [i] : []));
    await perform(
      machine.tick({ now, stopping: opts.signal.aborted, drainTo: drainTarget, laneIdle: lanes.every((l) => l.ops === 0), sourceIdle: sourceIdle(), committing }),
    );
    if (opts.onLag && now - lastLag >= 1000) {
      lastLag = now;
      const oldest = inflight.size ? Math.min(...inflight.values()) : (machine.openSince ?? confirmedTime);
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

  /** A tick a few ms from now, if the source stays quiet until then (at most one pending). */
  let quietTimer: NodeJS.Timeout | undefined;
  const quietSoon = (delay = quietMs) => {
    if (quietTimer || end.signal.aborted) return;
    quietTimer = setTimeout(() => {
      quietTimer = undefined;
      if (sourceIdle()) {
        void guarded(async () => {
          await tick();
          // Held back by the commit gap (or a commit in flight, which calls back when done): look again soon.
          if (machine.committable) quietSoon(Math.max(quietMs, minCommitGapMs / 2));
        });
      } else if (arriving === 0) quietSoon();
    }, delay);
  };

  const timer = setInterval(() => void guarded(tick), Math.min(100, batchMs));
  try {
    await source.stream(
      opts.flow,
      opts.tables,
      start,
      async (events) => {
        arriving++;
        lastArrival = Date.now();
        try {
          await guarded(() => handleAll(events));
        } finally {
          arriving--;
          lastArrival = Date.now();
          quietSoon();
        }
      },
      end.signal,
    );
    if (!end.signal.aborted) failure ??= new Error('the replication stream ended unexpectedly');
  } catch (err) {
    failure ??= err;
  } finally {
    clearInterval(timer);
    if (quietTimer) clearTimeout(quietTimer);
    await reader.run(async () => {});
    await allLanes();
    await acks.run(async () => {});
    for (const b of batches.values()) await b.rollback().catch(() => {});
    batches.clear();
  }
  if (failure !== undefined) throw failure;
  return { position: machine.acknowledgedPosition };
}
