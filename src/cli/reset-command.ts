/**
 * `ferry reset`: discard a flow so that the next `ferry run` begins from nothing. Drops the replication slot and
 * publication on the source, the flow's `_ferry` bookkeeping on the target (the schema when no other flow uses it),
 * and the flow's records in the local state file. The target's tables and rows are the user's and are kept.
 * Each step is idempotent, so a reset that failed half way is finished by running it again.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { SqliteStateStore } from '../adapters/sqlite/sqlite-state-store.js';
import { loadConfigFile } from '../config/load.js';
import { describeEndpoint } from '../config/endpoint.js';
import { FerryError } from '../core/errors.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { UsageError } from './args.js';
import { releaseDescription, releaseFlow } from './bookkeeping.js';

export interface ResetIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function resetCommand(path: string, opts: { yes: boolean }, io: ResetIo = { input: process.stdin, output: process.stderr }): Promise<number> {
  const config = await loadConfigFile(path);
  const flow = flowIdOf(config);
  const touched = releaseDescription(config, flow);
  const what = [
    `  source ${describeEndpoint(config.source, { withUser: true, unparseable: '(url)' })}: ${touched.source}`,
    `  target ${describeEndpoint(config.target, { withUser: true, unparseable: '(url)' })}: ${touched.target}`,
    `  ${config.state.path}: the flow's plan, jobs and checkpoints`,
  ].join('\n');
  if (!opts.yes) {
    if (!io.input.isTTY || !io.output.isTTY) {
      throw new UsageError(`\`ferry reset\` discards flow ${flow} and needs a confirmation: run it on a terminal, or add --yes`, 'reset');
    }
    const rl = createInterface({ input: io.input, output: io.output });
    const answer = await rl.question(`ferry reset discards flow ${flow}:\n${what}\nThe target's tables and rows are kept. Type the flow name (${flow}) to confirm: `);
    rl.close();
    if (answer.trim() !== flow) {
      io.output.write('ferry: reset cancelled, nothing changed\n');
      return 1;
    }
  }

  const store = existsSync(config.state.path) ? new SqliteStateStore(config.state.path) : undefined;
  const owner = `${hostname()}:${process.pid}:reset`;
  try {
    if (store && !(await store.acquireLease(`runner:${flow}`, owner, Date.now() + 60_000))) {
      throw new FerryError(`flow ${flow} is running`, 'stop it first (Ctrl-C on `ferry run`, or `ferry stop`), then reset');
    }
    const done = await releaseFlow(config, flow);
    await store?.deleteFlow(flow);
    process.stdout.write(
      `flow ${flow} reset: ${done.join('; ')}; local state removed.\n` +
        `The target's tables are kept: empty them (or set target.onExistingRows: truncate), then \`ferry run ${path}\` starts over.\n`,
    );
    return 0;
  } finally {
    await store?.releaseLease(`runner:${flow}`, owner);
    await store?.close();
  }
}
