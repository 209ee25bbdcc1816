/**
 * MongoDB positions: `{ token, clusterTime }` (NOTES.md). `token` is a change stream resume token (an event's `_id`
 * or a cursor's postBatchResumeToken) as plain JSON, `clusterTime` the timestamp it stands for, as `"<t>.<i>"`.
 *
 * A resume token's `_data` (MongoDB 4.2+) is the hex form of a KeyString that starts with the cluster time:
 * byte 0x82 (the Timestamp type), then the seconds and the increment as big-endian 32-bit integers. Tokens therefore
 * order by cluster time, and within one time by the rest of the KeyString (transaction op index, document key), which
 * the hex compares in the same order. Pure: no driver.
 */
import type { Position } from '../../../core/model.js';
import { FerryError } from '../../../core/errors.js';

/** A type alias, not an interface: it must be assignable to `Json`. */
export type MongoPosition = { token: { _data: string }; clusterTime: string };

export function isMongoPosition(p: Position): p is MongoPosition {
  const v = p as MongoPosition | null;
  return !!v && typeof v === 'object' && typeof v.clusterTime === 'string' && !!v.token && typeof v.token._data === 'string';
}

export function asMongoPosition(p: Position): MongoPosition {
  if (!isMongoPosition(p)) throw new FerryError(`not a MongoDB change stream position: ${JSON.stringify(p).slice(0, 200)}`);
  return p;
}

/** The cluster time a resume token stands for, or undefined for a token of a format this does not know. */
export function clusterTimeOfToken(token: { _data?: unknown }): { t: number; i: number } | undefined {
  const data = token._data;
  if (typeof data !== 'string' || !/^82[0-9a-fA-F]{16}/.test(data)) return undefined;
  return { t: parseInt(data.slice(2, 10), 16), i: parseInt(data.slice(10, 18), 16) };
}

export function positionOfToken(token: { _data: string }): MongoPosition {
  const ct = clusterTimeOfToken(token);
  if (!ct) throw new FerryError(`unreadable MongoDB resume token ${JSON.stringify(token).slice(0, 120)}: expected a hex _data (MongoDB 4.2 or later)`);
  return { token: { _data: token._data }, clusterTime: `${ct.t}.${ct.i}` };
}

function parts(p: MongoPosition): [number, number] {
  const [t, i] = p.clusterTime.split('.').map(Number);
  return [t ?? 0, i ?? 0];
}

/** Seconds of the cluster time, in ms (for lag). */
export function positionTimeMs(p: MongoPosition): number {
  return parts(p)[0] * 1000;
}

export function compareMongoPositions(a: Position, b: Position): number {
  const pa = asMongoPosition(a);
  const pb = asMongoPosition(b);
  const [ta, ia] = parts(pa);
  const [tb, ib] = parts(pb);
  if (ta !== tb) return ta < tb ? -1 : 1;
  if (ia !== ib) return ia < ib ? -1 : 1;
  const da = pa.token._data.toUpperCase();
  const db = pb.token._data.toUpperCase();
  return da === db ? 0 : da < db ? -1 : 1;
}
