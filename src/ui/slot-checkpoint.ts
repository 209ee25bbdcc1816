/**
 * The replication slot's lag and retained WAL as the streamer last sampled them, kept in the state store. A
 * dashboard that cannot (or should not) reach the source reads this instead: `ferry aws ui` runs on a laptop while
 * the source sits in a VPC.
 */
import type { LagInfo } from '../core/ports/change-source.js';
import type { StateStore } from '../core/ports/state-store.js';

export const CDC_SLOT = 'cdc-slot';

export type SlotSample = LagInfo & { at: number };

/** The last sample, or undefined when none was written (or it is older than `maxAgeMs`: a stopped streamer's). */
export async function readSlotSample(store: StateStore, flow: string, maxAgeMs = 10 * 60_000): Promise<LagInfo | undefined> {
  const s = (await store.getCheckpoint(flow, CDC_SLOT)) as SlotSample | undefined;
  if (!s || typeof s.at !== 'number' || Date.now() - s.at > maxAgeMs) return undefined;
  return { lagBytes: s.lagBytes, retained: s.retained, horizonSeconds: s.horizonSeconds, active: s.active };
}
