/**
 * Does the deployment fit in the databases' free connections? Checked by Validate before anything is written, so a
 * copy concurrency too large for `max_connections` is refused with numbers, instead of surfacing hours later as
 * `too many clients` in the source's own application and as failing range jobs.
 */
import { PreflightError } from '../../core/errors.js';
import { COPY_CONNECTIONS_PER_SIDE } from './copy-batch.js';

/** What one side needs besides the copies: the streamer (replication + row fetches, or the applier) and one step. */
export const OTHER_CONNECTIONS = { source: { streamer: 3, step: 2 }, target: { streamer: 2, step: 2 } } as const;

export interface Room {
  max: number;
  reserved: number;
  used: number;
  free: number;
}

/** Throws a PreflightError naming the side, its figures and what to change, when the copies would not fit. */
export function checkConnectionBudget(role: 'source' | 'target', room: Room, copyConcurrency: number, streaming: boolean): void {
  const o = OTHER_CONNECTIONS[role];
  const need = copyConcurrency * COPY_CONNECTIONS_PER_SIDE + (streaming ? o.streamer : 0) + o.step;
  if (need <= room.free) return;
  const fits = Math.max(0, Math.floor((room.free - (streaming ? o.streamer : 0) - o.step) / COPY_CONNECTIONS_PER_SIDE));
  throw new PreflightError(
    `the ${role} has ${room.free} free connections (max_connections ${room.max}, ${room.reserved} reserved, ${room.used} in use) ` +
      `but this deployment needs up to ${need}: ${copyConcurrency} copy functions x ${COPY_CONNECTIONS_PER_SIDE}` +
      `${streaming ? ` + streamer ${o.streamer}` : ''} + workflow step ${o.step}`,
    `deploy with FERRY_COPY_CONCURRENCY=${Math.max(2, fits)} or lower (at most ${fits} fit now), or raise max_connections on the ${role}`,
  );
}
