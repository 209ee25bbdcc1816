import { hostname } from 'node:os';
import { releaseFlow } from './bookkeeping.js';
import { FerryError } from '../core/errors.js';
import { withFlow } from './flow-context.js';

/**
 * Drop what Ferry left on the databases: the replication slot and publication on a PostgreSQL source (so WAL is no
 * longer retained), and the bookkeeping on the target (`_ferry` schema on PostgreSQL, the flow's documents in the
 * `_ferry` collection on MongoDB). The state file is kept.
 */
export async function cleanupCommand(path: string): Promise<number> {
  return withFlow(path, async ({ config, store, flow }) => {
    const owner = `${hostname()}:${process.pid}:cleanup`;
    if (!(await store.acquireLease(`runner:${flow.id}`, owner, Date.now() + 60_000))) {
      throw new FerryError(`flow ${flow.id} is running`, 'stop it first (`ferry stop`, or Ctrl-C on `ferry run`)');
    }
    try {
      const done = await releaseFlow(config, flow.id);
      await store.updateFlow(flow.id, { phase: 'done' });
      process.stdout.write(`flow ${flow.id}: ${done.join('; ')}\n`);
      return 0;
    } finally {
      await store.releaseLease(`runner:${flow.id}`, owner);
    }
  });
}
