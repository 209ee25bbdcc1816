import { SqliteStateStore } from '../../adapters/sqlite/sqlite-state-store.js';
import type { StateStore } from '../../core/ports/state-store.js';

/** The local state store: one SQLite file, readable by `ferry status` from another terminal while a run writes. */
export async function openLocalStateStore(path: string): Promise<StateStore> {
  return new SqliteStateStore(path);
}
