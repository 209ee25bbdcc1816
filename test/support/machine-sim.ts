/**
 * Runs a StreamMachine's actions the way the executor does, in emission order (one valid interleaving of the
 * lanes), against an in-memory table state: what each batch holds, what commits make visible, what is
 * acknowledged. For scripted-event tests of the machine's decisions (the real target is tested elsewhere).
 */
import { StreamMachine, type MachineConfig, type StreamAction } from '../../src/core/cdc/stream-machine.js';
import { compareLsn } from '../../src/adapters/postgres/cdc/lsn.js';
import type { Change, StreamEvent } from '../../src/core/ports/change-source.js';

type Op = { change: Change } | { savepoint: string };

export class MachineSim {
  /** table -> id -> value of column v (or the id). */
  readonly rows = new Map<string, Map<string, string>>();
  /** Positions each batch key committed with, in order. */
  readonly committed: { key: string; position: string }[] = [];
  readonly acks: string[] = [];
  readonly actions: StreamAction[] = [];
  private readonly batches = new Map<string, Op[]>();
  private readonly done = new Set<number>();

  constructor(readonly m: StreamMachine) {}

  private key(a: { lane?: number; xid?: string }): string {
    return a.xid !== undefined ? `x${a.xid}` : `l${a.lane ?? 0}`;
  }

  private batch(a: { lane?: number; xid?: string }): Op[] {
    const k = this.key(a);
    let b = this.batches.get(k);
    if (!b) this.batches.set(k, (b = []));
    return b;
  }

  get machineCommittable(): boolean {
    return this.m.committable;
  }

  get openBatches(): string[] {
    return [...this.batches.keys()];
  }

  run(actions: StreamAction[]): StreamAction[] {
    for (const a of actions) {
      this.actions.push(a);
      switch (a.type) {
        case 'apply':
          this.batch(a).push(...a.changes.map((change) => ({ change })));
          break;
        case 'savepoint':
          this.batch(a).push({ savepoint: a.name });
          break;
        case 'rollbackTo': {
          const b = this.batch(a);
          const at = b.findIndex((o) => 'savepoint' in o && o.savepoint === a.name);
          if (at < 0) throw new Error(`no savepoint ${a.name}`);
          b.length = at + 1;
          break;
        }
        case 'rollback':
          this.batches.delete(this.key(a));
          break;
        case 'commit': {
          for (const o of this.batches.get(this.key(a)) ?? []) if ('change' in o) this.applyChange(o.change);
          this.batches.delete(this.key(a));
          this.committed.push({ key: this.key(a), position: a.position as string });
          this.done.add(a.id);
          if (a.ack) this.ack(a.position as string);
          break;
        }
        case 'advance':
          for (const id of a.after ?? []) if (!this.done.has(id)) throw new Error(`advance before commit ${id}`);
          this.ack(a.position as string);
          break;
        default:
          break;
      }
    }
    return actions;
  }

  private ack(p: string): void {
    this.acks.push(p);
    this.m.acknowledged(p);
  }

  private applyChange(c: Change): void {
    const t = (name: string) => {
      let r = this.rows.get(name);
      if (!r) this.rows.set(name, (r = new Map()));
      return r;
    };
    if (c.op === 'insert' || c.op === 'update') t(c.table).set(c.row.id!, c.row.v ?? c.row.id!);
    else if (c.op === 'delete') t(c.table).delete(c.old.id!);
    else for (const name of c.tables) t(name).clear();
  }

  feed(events: StreamEvent[], now = 0): StreamAction[] {
    return this.run(events.flatMap((e) => this.m.event(e, now)));
  }

  tick(now: number, over: { sourceIdle?: boolean; stopping?: boolean; committing?: number[] } = {}): StreamAction[] {
    return this.run(this.m.tick({ now, stopping: over.stopping ?? false, laneIdle: true, sourceIdle: over.sourceIdle, committing: over.committing }));
  }

  ids(table: string): string[] {
    return [...(this.rows.get(table)?.keys() ?? [])].sort((a, b) => Number(a) - Number(b));
  }
}

/** A machine with the settings every scripted test starts from (tables app.t and app.u unless `over` says). */
export function testMachine(over: Partial<MachineConfig> = {}): StreamMachine {
  return new StreamMachine({
    tables: ['app.t', 'app.u'],
    applied: undefined,
    start: '0/100',
    compare: (a, b) => compareLsn(a as string, b as string),
    batchMs: 500,
    applyChunk: 1000,
    applyChunkBytes: 1 << 20,
    commitChanges: 100_000,
    stopGraceMs: 5000,
    hooks: { relation: false, message: false },
    ...over,
  });
}
