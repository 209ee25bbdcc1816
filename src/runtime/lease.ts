/**
 * Holding a named lease in the state store while work runs: renewed well before it expires, and if a renewal is
 * refused (another owner took it after we stalled), `lost` fires so the holder stops before doing harm.
 *
 * Owners are written `host:pid[:...]`. A lease whose owner is a process of this host that no longer exists (a run
 * killed with kill -9) is released at once instead of being waited out; anything else (another host, a live
 * process, an owner in another form) is waited for. A recycled pid only makes us wait, never take a live lease.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StateStore } from '../core/ports/state-store.js';

export interface HeldLease {
  /** Aborted when the lease could not be renewed. */
  lost: AbortSignal;
  release(): Promise<void>;
}

export interface LeaseOptions {
  ttlMs: number;
  /** Wait this long for a lease held by another owner (0: give up at once). */
  waitMs: number;
  onWait?: () => void;
}

/** Take the lease (waiting up to `waitMs`); undefined if another owner still holds it. */
export async function acquireLease(store: StateStore, name: string, owner: string, opts: LeaseOptions): Promise<HeldLease | undefined> {
  const giveUp = Date.now() + opts.waitMs;
  let waited = false;
  while (!(await store.acquireLease(name, owner, Date.now() + opts.ttlMs))) {
    const holder = await store.leaseOwner?.(name).catch(() => undefined);
    if (holder !== undefined && holder !== owner && deadLocalOwner(holder)) {
      await store.releaseLease(name, holder); // deletes only if that dead owner still holds it
      continue;
    }
    if (Date.now() >= giveUp) return undefined;
    if (!waited) opts.onWait?.();
    waited = true;
    await sleep(Math.min(1000, opts.ttlMs / 4));
  }
  const lost = new AbortController();
  const renew = setInterval(() => {
    store.acquireLease(name, owner, Date.now() + opts.ttlMs).then(
      (ok) => {
        if (!ok) lost.abort(new Error(`lease ${name} was taken by another owner`));
      },
      () => {}, // a failed renewal is retried at the next tick; the TTL leaves room for several
    );
  }, Math.max(250, Math.floor(opts.ttlMs / 3)));
  renew.unref();
  return {
    lost: lost.signal,
    async release() {
      clearInterval(renew);
      await store.releaseLease(name, owner).catch(() => {});
    },
  };
}

/** True when `owner` names a process of this host (`host:pid...`) that is not running. */
export function deadLocalOwner(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
