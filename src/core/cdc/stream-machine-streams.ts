/**
 * The state machine's part for streamed in-progress transactions (PostgreSQL protocol v2, `streaming 'on'`): a
 * large source transaction arrives in blocks before it commits, interleaved with other streamed transactions and
 * with ordinary ones.
 *
 * - Each top-level transaction gets a target batch of its own (its own connection), opened at its first change and
 *   kept open across blocks; a SAVEPOINT is set before the first change of each subtransaction.
 * - stream-abort of a subtransaction rolls back to its savepoint (which also undoes the subtransactions that began
 *   after it, as the source's abort of it does); stream-abort of the transaction rolls the batch back: nothing of
 *   it reaches the target.
 * - stream-commit commits the batch at the commit position, after the caller made every ordinary lane commit what
 *   came before. A restart resends a transaction whose commit is after the confirmed position from its start; if
 *   the target already has it (its commit is at or before lane 0's applied position), its batch is rolled back.
 * - At most `maxStreams` batches are open at once (each holds a connection). A transaction beyond that cannot wait
 *   (its end comes later in the same stream, after blocks of the others), so its actions are held in memory until a
 *   batch closes or it commits (then it commits on one spare connection); past `maxHeldBytes` the stream fails with
 *   advice. Memory stays bounded either way.
 */
import { FerryError } from '../errors.js';
import type { Position } from '../model.js';
import type { Change, StreamEvent } from '../ports/change-source.js';
import { changeBytes, type StreamAction } from './stream-actions.js';

interface Stream {
  xid: string;
  /** It has (or may open) a batch of its own; otherwise its actions are held. */
  active: boolean;
  held: StreamAction[];
  heldBytes: number;
  /** Subtransactions with a savepoint, in the order they began. */
  subs: string[];
  pending: Change[];
  pendingBytes: number;
  changes: number;
  /** Anything (changes, hooks) was scheduled for its batch. */
  used: boolean;
}

export interface StreamsConfig {
  maxStreams: number;
  maxHeldBytes: number;
  applyChunk: number;
  applyChunkBytes: number;
  keep(change: Change, out: StreamAction[]): Change | undefined;
  alreadyApplied(position: Position): boolean;
}

/** Savepoint names are identifiers: only the xid's digits (or letters) go into them. */
export function savepointName(subxid: string): string {
  return `ferry_sx_${subxid.replace(/[^A-Za-z0-9]/g, '_')}`;
}

export class Streams {
  private readonly open = new Map<string, Stream>();
  private block: Stream | undefined;

  constructor(private readonly cfg: StreamsConfig) {}

  get inBlock(): boolean {
    return this.block !== undefined;
  }

  get size(): number {
    return this.open.size;
  }

  private get activeCount(): number {
    let n = 0;
    for (const s of this.open.values()) if (s.active) n++;
    return n;
  }

  /** Route an action of stream `s`: to the output when it has a batch, else to its held buffer (bounded). */
  private emit(s: Stream, a: StreamAction, out: StreamAction[], bytes = 0): void {
    s.used = true;
    if (s.active) {
      out.push(a);
      return;
    }
    s.held.push(a);
    s.heldBytes += bytes + 64;
    if (s.heldBytes > this.cfg.maxHeldBytes) {
      throw new FerryError(
        `more than ${this.cfg.maxStreams} large source transactions are in progress at once, and transaction ${s.xid} ` +
          `has buffered over ${this.cfg.maxHeldBytes >> 20} MiB while waiting for a target connection`,
        'raise cdc.maxStreamedTransactions (each needs a target connection), or raise logical_decoding_work_mem on the source so fewer transactions are streamed',
      );
    }
  }

  private flush(s: Stream, out: StreamAction[]): void {
    if (s.pending.length === 0) return;
    const bytes = s.pendingBytes;
    this.emit(s, { type: 'apply', changes: s.pending, bytes, xid: s.xid }, out, bytes);
    s.pending = [];
    s.pendingBytes = 0;
  }

  start(xid: string, first: boolean): void {
    let s = this.open.get(xid);
    if (first) {
      if (s) throw new Error(`the source started streamed transaction ${xid} twice`);
      s = { xid, active: this.activeCount < this.cfg.maxStreams, held: [], heldBytes: 0, subs: [], pending: [], pendingBytes: 0, changes: 0, used: false };
      this.open.set(xid, s);
    } else if (!s) {
      // A later block of a transaction whose first block was never received: applying it would apply half of it.
      throw new Error(`streamed transaction ${xid} continues, but its first block was not received`);
    }
    this.block = s;
  }

  /** Events inside a block (between stream-start and stream-stop). */
  blockEvent(e: StreamEvent, out: StreamAction[], hooks: { relation: boolean; message: boolean }): StreamAction[] {
    const s = this.block!;
    switch (e.kind) {
      case 'change': {
        const change = this.cfg.keep(e.change, out);
        if (!change) return out;
        const sub = e.xid;
        if (sub !== undefined && sub !== s.xid && !s.subs.includes(sub)) {
          this.flush(s, out);
          this.emit(s, { type: 'savepoint', name: savepointName(sub), xid: s.xid }, out);
          s.subs.push(sub);
        }
        s.pending.push(change);
        s.pendingBytes += changeBytes(change);
        s.changes++;
        if (s.pending.length >= this.cfg.applyChunk || s.pendingBytes >= this.cfg.applyChunkBytes) this.flush(s, out);
        return out;
      }
      case 'relation':
      case 'message': {
        if (e.kind === 'relation' ? !hooks.relation : !hooks.message) return out;
        this.flush(s, out);
        if (!s.active) {
          throw new FerryError(
            `a schema change arrived inside streamed transaction ${s.xid}, which waits for a target connection (more than ${this.cfg.maxStreams} large transactions in progress)`,
            'raise cdc.maxStreamedTransactions',
          );
        }
        const event =
          e.kind === 'relation'
            ? ({ kind: 'relation', relation: e.relation } as const)
            : ({ kind: 'message', prefix: e.prefix, content: e.content, position: e.position } as const);
        this.emit(s, { type: 'hook', event, xid: s.xid }, out);
        return out;
      }
      case 'stream-stop':
        this.flush(s, out);
        this.block = undefined;
        return out;
      default:
        return out;
    }
  }

  /** Returns the commit action (pushed to `out`), or undefined when nothing is committed (empty, or already applied). */
  commit(xid: string, position: Position, time: number, id: number, out: StreamAction[]): Extract<StreamAction, { type: 'commit' }> | undefined {
    const s = this.open.get(xid);
    if (!s) return undefined;
    this.flush(s, out);
    this.close(s);
    let commit: Extract<StreamAction, { type: 'commit' }> | undefined;
    if (!s.used || this.cfg.alreadyApplied(position)) {
      // Nothing of ours, or the target committed it before a restart: release the batch (if any) unchanged.
      if (s.active && s.used) out.push({ type: 'rollback', xid });
    } else {
      // A held transaction commits now on the spare connection: its actions, then its commit, back to back.
      if (!s.active) out.push(...s.held);
      commit = { type: 'commit', id, position, time, changes: s.changes, transactions: 1, ack: false, xid };
      out.push(commit);
    }
    this.promote(out);
    return commit;
  }

  abort(xid: string, subxid: string, out: StreamAction[]): void {
    const s = this.open.get(xid);
    if (!s) return;
    if (subxid === xid) {
      this.close(s);
      if (s.active && s.used) out.push({ type: 'rollback', xid });
      this.promote(out);
      return;
    }
    const at = s.subs.indexOf(subxid);
    if (at < 0) return; // no change of it reached us (its changes, if any, were all filtered)
    this.flush(s, out);
    this.emit(s, { type: 'rollbackTo', name: savepointName(subxid), xid }, out);
    // Savepoints set after it are gone with it (ROLLBACK TO destroys them), as are its own changes. (The change
    // count a commit reports stays what was scheduled, rolled-back changes included.)
    s.subs.length = at;
  }

  /** Stop: every open streamed batch is rolled back (the source resends those transactions on restart). */
  rollbackAll(out: StreamAction[]): void {
    for (const s of [...this.open.values()]) {
      this.close(s);
      if (s.active && s.used) out.push({ type: 'rollback', xid: s.xid });
    }
  }

  private close(s: Stream): void {
    this.open.delete(s.xid);
    if (this.block === s) this.block = undefined;
  }

  /** A batch closed: the oldest held transaction gets it, and its held actions run now, in order. */
  private promote(out: StreamAction[]): void {
    for (const s of this.open.values()) {
      if (this.activeCount >= this.cfg.maxStreams) return;
      if (s.active) continue;
      s.active = true;
      out.push(...s.held);
      s.held = [];
      s.heldBytes = 0;
    }
  }
}
