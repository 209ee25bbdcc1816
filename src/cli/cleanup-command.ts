import { hostname } from 'node:os';
import { PgChangeSource } from '../adapters/postgres/cdc/change-source.js';
import { dropTargetBookkeeping } from './bookkeeping.js';
import { FerryError } from '../core/errors.js';
import { withFlow } from './flow-context.js';

/**
 * Drop what Ferry left on the databases: the replication slot and publication on the source (so WAL is no longer
 * retained), and the `_ferry` bookkeeping schema on the target. The state file is kept.
 */
export async function cleanupCommand(path: string): Promise<number> {
  return withFlow(path, async ({ config, store, flow }) => {
    const owner = `${hostname()}:${process.pid}:cleanup`;
    if (!(await store.acquireLease(`runner:${flow.id}`, owner, Date.now() + 60_000))) {
      throw new FerryError(`flow ${flow.id} is running`, 'stop it first (`ferry stop`, or Ctrl-C on `ferry run`)');
    }
    try {
      const source = new PgChangeSource(config.source);
      try {
        await source.cleanup(flow.id);
      } finally {
        await source.close();
      }
      await dropTargetBookkeeping(config.target, flow.id);
      await store.updateFlow(flow.id, { phase: 'done' });
      process.stdout.write(`flow ${flow.id}: replication slot and publication dropped; target bookkeeping removed\n`);
      return 0;
    } finally {
      await store.releaseLease(`runner:${flow.id}`, owner);
    }
  });
}
