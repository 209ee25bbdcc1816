/**
 * The CDC streamer: source transactions applied to the target in order, in target transactions batched by time
 * (about `batchMs`), size, or at once when the source goes quiet (adaptive: low lag when idle, large groups when
 * busy), with the checkpoint moving only after the target committed.
 *
 * Two sides, so that decoding on the source and applying on the target overlap:
 * - the read side (here) feeds events and timer ticks to the state machine (stream-machine.ts), which decides
 *   (batch, commit, skip, confirm), one input at a time;
 * - the executor (stream-executor.ts) runs those actions on the target's apply lanes.
 * The read side awaits the lanes only when more than `maxBacklogBytes` of changes wait there, which pauses the
 * source (backpressure), so memory stays bounded however large a transaction is.
 *
 * The read side's cost per event is what bounds small transactions (issue 10 (b)): the clock is read once per
 * hand-over, the machine appends its actions to one reused array, a hand-over that finds the reader free runs at
 * once (no promise chain; the source gets one shared resolved promise back), and the quiet-source check is one
 * timer, re-armed lazily (`refresh`), not one per hand-over.
 *
 * Contracts it relies on and keeps:
 * - The checkpoint, then the source acknowledgement, follow the target commits, never precede them: with several
 *   lanes, the acknowledged position is the end of the longest prefix of the stream that every lane committed.
 * - A source transaction is never split across target commits: a huge one streams into one open target
 *   transaction, `applyChunk` changes at a time.
 * - Any failure stops the stream without acknowledging anything after the last commit.
 */
import { FerryError } from '../errors.js';
import type { Position } from '../model.js';
import type { ChangeSource, StreamEvent } from '../ports/change-source.js';
import type { ChangeTarget } from '../ports/change-target.js';
import type { StateStore } from '../ports/state-store.js';
import { laneOf, resolveLanes } from './lane-layout.js';
import { StreamExecutor } from './stream-executor.js';
import { StreamMachine, type StreamAction } from './stream-machine.js';
import type { StreamHooks } from './stream-hooks.js';
import { CDC_CHECKPOINT, type StreamerOptions } from './streamer-options.js';
import { Turns } from './turns.js';

export type { HookResult, StreamHooks } from './stream-hooks.js';
export { CDC_CHECKPOINT, CDC_LAG, CDC_LIVE, streamerConnections } from './streamer-options.js';
export type { AppliedInfo, LiveStatus, StreamerOptions } from './streamer-options.js';

export interface StreamerDeps {
  source: ChangeSource;
  target: ChangeTarget;
  store: StateStore;
  hooks?: StreamHooks;
}

const DONE: Promise<void> = Promise.resolve();

export async function runStreamer(deps: StreamerDeps, opts: StreamerOptions): Promise<{ position: Position }> {
  const { source, target, store, hooks } = deps;
  const batchMs = opts.batchMs ?? 500;
  const quietMs = opts.quietMs ?? 3;
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
    minCommitGapMs: opts.minCommitGapMs ?? 10,
    commitChanges: opts.commitChanges ?? 500_000,
    stopGraceMs: opts.stopGraceMs ?? 5000,
    hooks: { relation: Boolean(hooks?.onRelation), message: Boolean(hooks?.onMessage) },
  });
  const end = new AbortController();
  const exec = new StreamExecutor({
    ...deps,
    machine,
    opts,
    tables,
    layout,
    compare,
    onCommitted: () => armQuiet(), // group commit: what arrived meanwhile may commit now
    end: () => end.abort(),
  });
  const fail = (err: unknown) => {
    exec.failure ??= err;
    end.abort();
  };

  // ---- the read side: one input at a time (hand-overs and ticks share the turn) ----
  const reader = new Turns();
  /** Runs `fn` unless the stream is ending; errors end the stream. Returns a promise only when `fn` waits. */
  const guarded = (fn: () => Promise<void> | undefined): Promise<void> | undefined => {
    if (exec.failure !== undefined || end.signal.aborted) return undefined;
    try {
      return fn()?.catch(fail);
    } catch (err) {
      fail(err);
      return undefined;
    }
  };

  /** Actions of the event being decided (reused: the executor copies what it keeps). */
  const out: StreamAction[] = [];
  const handleFrom = (events: StreamEvent[], from: number): Promise<void> | undefined => {
    const now = Date.now(); // once per hand-over (and after each wait)
    for (let i = from; i < events.length; i++) {
      machine.event(events[i]!, now, out);
      if (out.length !== 0) {
        const wait = exec.perform(out);
        out.length = 0;
        if (wait) return wait.then(() => afterWait(events, i + 1));
      }
      // Backpressure: the source waits while the target catches up.
      if (exec.backlog > maxBacklogBytes) return exec.allLanes().then(() => handleFrom(events, i + 1));
    }
    return undefined;
  };
  const afterWait = (events: StreamEvent[], next: number): Promise<void> | undefined =>
    exec.failure !== undefined ? undefined : exec.backlog > maxBacklogBytes ? exec.allLanes().then(() => handleFrom(events, next)) : handleFrom(events, next);

  let drainTarget: Position | undefined;
  let lastDrainPoll = 0;
  let lastLag = 0;
  /** Hand-overs from the source not yet handled, and when the last one ended (adaptive commits). */
  let arriving = 0;
  let lastArrival = 0;
  const sourceIdle = () => arriving === 0 && Date.now() - lastArrival >= quietMs;

  const tickAt = (now: number): Promise<void> | undefined => {
    const wait = exec.perform(
      machine.tick({ now, stopping: opts.signal.aborted, drainTo: drainTarget, laneIdle: exec.laneIdle, sourceIdle: sourceIdle(), committing: exec.committing() }),
    );
    if (opts.onLag && now - lastLag >= 1000) {
      lastLag = now;
      const oldest = exec.oldestInflight() ?? machine.openSince ?? exec.confirmedTime;
      if (oldest !== undefined) opts.onLag(Math.max(0, now - oldest), machine.acknowledgedPosition);
    }
    return wait;
  };
  const tick = (): Promise<void> | undefined => {
    const now = Date.now();
    if (opts.drainTo && drainTarget === undefined && now - lastDrainPoll >= 1000) {
      lastDrainPoll = now;
      return opts.drainTo().then((p) => {
        drainTarget ??= p;
        return tickAt(now);
      });
    }
    return tickAt(now);
  };

  /**
   * The quiet check. Armed at the end of a hand-over (or of a commit) only when the machine holds something a tick
   * could commit, for when it could: `quietMs` from now (one timer, re-armed in place with `refresh`), or, when the
   * commit gap holds the lane back longer, once at the gap's end (a second timer, set at most once per wait).
   * While hand-overs keep coming the check re-arms; it never wakes the process for a tick that cannot commit.
   */
  let quietTimer: NodeJS.Timeout | undefined;
  let quietArmed = false;
  let gapTimer: NodeJS.Timeout | undefined;
  let gapAt = Infinity;
  let stopped = false;
  const armQuiet = (now = Date.now()) => {
    if (stopped || end.signal.aborted) return;
    const due = machine.quietDue();
    if (due === undefined) return;
    if (due > now + quietMs) {
      if (gapTimer !== undefined && gapAt <= due) return;
      if (gapTimer !== undefined) clearTimeout(gapTimer);
      gapAt = due;
      gapTimer = setTimeout(onGap, due - now);
      return;
    }
    if (quietArmed) return;
    quietArmed = true;
    if (quietTimer) quietTimer.refresh();
    else quietTimer = setTimeout(onQuiet, quietMs);
  };
  const quietTick = (): Promise<void> | undefined => {
    const wait = tick();
    // Held back (the commit gap, or a commit in flight, which calls back when done): look again when it may commit.
    const again = () => armQuiet();
    if (!wait) again();
    return wait?.then(again);
  };
  const check = () => {
    if (arriving > 0) return; // that hand-over re-arms at its end
    if (!sourceIdle()) armQuiet();
    else void reader.run(() => guarded(quietTick));
  };
  const onQuiet = () => {
    quietArmed = false;
    check();
  };
  const onGap = () => {
    gapTimer = undefined;
    gapAt = Infinity;
    check();
  };
  const arrived = () => {
    arriving--;
    lastArrival = Date.now();
    armQuiet(lastArrival);
  };

  const interval = setInterval(() => void reader.run(() => guarded(tick)), Math.min(100, batchMs));
  try {
    await source.stream(
      opts.flow,
      opts.tables,
      start,
      (events) => {
        arriving++;
        const wait = reader.run(() => guarded(() => handleFrom(events, 0)));
        if (!wait) {
          arrived();
          return DONE;
        }
        return wait.then(arrived);
      },
      end.signal,
    );
    if (!end.signal.aborted) exec.failure ??= new Error('the replication stream ended unexpectedly');
  } catch (err) {
    exec.failure ??= err;
  } finally {
    clearInterval(interval);
    stopped = true; // nothing re-arms the quiet check now
    if (quietTimer) clearTimeout(quietTimer);
    if (gapTimer) clearTimeout(gapTimer);
    await reader.run(() => DONE);
    await exec.settle();
    await exec.rollbackOpen();
  }
  if (exec.failure !== undefined) throw exec.failure;
  return { position: machine.acknowledgedPosition };
}
