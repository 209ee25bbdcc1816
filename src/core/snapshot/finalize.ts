/**
 * After every range is loaded: check that no job failed, then let the target build indexes and constraints and set
 * sequences from the source's current values. Idempotent, so a crash during finalize is resumed by running it again.
 */
import { FerryError } from '../errors.js';
import type { FlowRecord } from '../model.js';
import type { SnapshotSource } from '../ports/source.js';
import type { StateStore } from '../ports/state-store.js';
import type { SnapshotTarget } from '../ports/target.js';

export interface SnapshotIncomplete {
  failed: { table: string; label: string; error: string }[];
  unfinished: number;
}

/** Throws a FerryError naming each failed job's table and range. */
export async function assertSnapshotComplete(store: StateStore, flow: string): Promise<void> {
  const failed = await store.listJobs(flow, 'failed');
  if (failed.length > 0) {
    const lines = failed.slice(0, 20).map((j) => `  - ${j.table} ${j.label}: ${j.error ?? 'unknown error'}`);
    if (failed.length > 20) lines.push(`  … and ${failed.length - 20} more`);
    throw new FerryError(
      `${failed.length} range job(s) failed for good:\n${lines.join('\n')}`,
      'fix the cause, then run again: finished ranges are kept and failed ones are retried',
    );
  }
  const pending = (await store.listJobs(flow, 'pending')).length + (await store.listJobs(flow, 'running')).length;
  if (pending > 0) throw new FerryError(`${pending} range job(s) are not done yet; finalize must wait for them`);
}

export async function finalizeSnapshot(
  deps: { source: SnapshotSource; target: SnapshotTarget; store: StateStore },
  flow: FlowRecord,
): Promise<{ warnings: string[] }> {
  await assertSnapshotComplete(deps.store, flow.id);
  // Run again at cutover (after streaming), the phase is left as it is.
  if (flow.phase === 'snapshot' || flow.phase === 'finalizing') await deps.store.updateFlow(flow.id, { phase: 'finalizing' });
  const sequences = await deps.source.sequences(flow.tables);
  return deps.target.finalize(flow.id, flow.tables, sequences);
}
