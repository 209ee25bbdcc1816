/**
 * `ferry` command line. Thin: parses arguments strictly (src/cli/args.ts), builds the sinks, calls a runtime, maps
 * errors to exit codes.
 *
 * Exit codes: 0 success; 1 failure (an error whose message says what to do, or `verify` found differences);
 * 2 usage error (unknown command or option, missing argument, `reset` without confirmation); 130 interrupted.
 */
import { readFileSync } from 'node:fs';
import { commandHelp, parseCommand, positiveNumber, suggest, UsageError, type CommandSpec, type OptionSpec } from './args.js';

const CONFIG = ['config.yaml'];

const uiOptions = {
  'ui-host': { type: 'string', value: 'HOST', help: 'address for the dashboard (default 127.0.0.1; any other needs --ui-token or gets a random one)' },
  'ui-port': { type: 'string', value: 'PORT', help: 'port for the dashboard (default 4280; 0 picks a free one)' },
  'ui-token': { type: 'string', value: 'TOKEN', help: 'a secret the dashboard asks for (required off 127.0.0.1)' },
} as const;

export const COMMANDS: Record<string, CommandSpec> = {
  run: {
    name: 'run',
    summary: 'copy (and with mode snapshot+cdc, stream) the selected tables; run again to resume',
    positionals: CONFIG,
    options: { ui: { type: 'boolean', help: 'also serve the live dashboard (see `ferry ui --help`)' }, ...uiOptions },
    details: 'Ctrl-C stops after the chunks in flight (snapshot) or commits and checkpoints (streaming).\nOn a terminal: live bars; otherwise JSON lines on stderr.',
  },
  plan: { name: 'plan', summary: 'show the tables and ranges a run would copy, and check the target; writes nothing', positionals: CONFIG, options: {} },
  status: {
    name: 'status',
    summary: "a flow's progress, streaming lag, and why it failed if it did",
    positionals: CONFIG,
    options: { json: { type: 'boolean', help: 'print one JSON document (for scripts)' } },
  },
  verify: {
    name: 'verify',
    summary: 'compare source and target by per-range checksums; exit 0 only when identical',
    positionals: CONFIG,
    options: {
      repair: { type: 'boolean', help: 'copy the differing ranges again, then verify them' },
      json: { type: 'boolean', help: 'print the report as JSON' },
    },
  },
  stop: {
    name: 'stop',
    summary: "cutover: the streamer applies everything up to the source's current position, sets sequences, and exits",
    positionals: CONFIG,
    options: { 'no-wait': { type: 'boolean', help: 'return at once instead of waiting for the drain' } },
  },
  cleanup: {
    name: 'cleanup',
    summary: "drop the replication slot and publication, and Ferry's bookkeeping on the target (keeps the state file)",
    positionals: CONFIG,
    options: {},
  },
  reset: {
    name: 'reset',
    summary: 'discard the flow to begin again: drop its slot, publication, `_ferry` on the target, and its local state',
    positionals: CONFIG,
    options: { yes: { type: 'boolean', short: 'y', help: 'do not ask for confirmation (required without a terminal)' } },
    details: "The target's tables and rows are kept: empty them or set target.onExistingRows: truncate before running again.",
  },
  ui: {
    name: 'ui',
    summary: 'a live web dashboard of the flow, read from the same state store as `ferry status`',
    positionals: CONFIG,
    options: {
      host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1; any other needs --token or gets a random one)' },
      port: { type: 'string', value: 'PORT', help: 'port (default 4280; 0 picks a free one)' },
      token: { type: 'string', value: 'TOKEN', help: 'a secret the dashboard asks for (required off 127.0.0.1)' },
    },
  },
  demo: {
    name: 'demo',
    summary: 'a whole migration between two embedded PostgreSQL servers: snapshot, live changes, cutover, verify',
    positionals: [],
    options: {
      scale: { type: 'string', value: 'N', help: 'size of the sample shop (1 = about a million rows; default 0.3)' },
      seconds: { type: 'string', value: 'N', help: 'how long the workload runs while Ferry streams (default 20)' },
      ui: { type: 'boolean', help: 'serve the live dashboard during the demo' },
      ...uiOptions,
    },
  },
  aws: {
    name: 'aws',
    summary: 'the AWS runtime: `ferry aws start|status|stop|verify|cleanup|ui <config.yaml>` (`ferry aws <sub> --help`)',
    positionals: [],
    options: {},
  },
};

const USAGE = `ferry: move a live database to another one and keep it in sync

usage: ferry <command> [arguments] [options]      ferry <command> --help for its options

${Object.values(COMMANDS)
  .map((c) => `  ${c.name.padEnd(8)} ${c.summary}`)
  .join('\n')}

  --version  print the version         --help  this help

exit codes: 0 success, 1 failure (or verify found differences), 2 usage error, 130 interrupted
`;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    return await dispatch(command, rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const see = err.command ? `see \`ferry ${err.command} --help\`` : 'see `ferry --help`';
    process.stderr.write(`ferry: ${err.message}\n  ${see}\n`);
    return 2;
  }
}

async function dispatch(command: string | undefined, rest: string[]): Promise<number> {
  switch (command) {
    case undefined:
      process.stderr.write(USAGE);
      return 2;
    case 'help':
    case '--help':
    case '-h':
      if (command === 'help' && rest[0] && COMMANDS[rest[0]]) return help(COMMANDS[rest[0]]!);
      process.stdout.write(USAGE);
      return 0;
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`ferry ${version()}\n`);
      return 0;
    case 'aws':
      return aws(rest);
  }
  const spec = COMMANDS[command];
  if (!spec) {
    const near = suggest(command, Object.keys(COMMANDS));
    throw new UsageError(`unknown ${command.startsWith('-') ? 'option' : 'command'} \`${command}\`${near ? `: did you mean \`ferry ${near}\`?` : ''}`);
  }
  const { positionals, values, help: wantsHelp } = parseCommand(spec, rest);
  if (wantsHelp) return help(spec);
  const path = positionals[0]!;
  const ui = uiFlags(values, spec.name === 'ui' ? '' : 'ui-');
  switch (spec.name) {
    case 'run':
      return (await import('./run-command.js')).runCommand(path, { ui: values.ui ? ui : undefined });
    case 'plan':
      return (await import('./plan-command.js')).planCommand(path);
    case 'status':
      return (await import('./status-command.js')).statusCommand(path, { json: values.json === true });
    case 'verify':
      return (await import('./verify-command.js')).verifyCommand(path, { repair: values.repair === true, json: values.json === true });
    case 'stop':
      return (await import('./stop-command.js')).stopCommand(path, { wait: values['no-wait'] !== true });
    case 'cleanup':
      return (await import('./cleanup-command.js')).cleanupCommand(path);
    case 'reset':
      return (await import('./reset-command.js')).resetCommand(path, { yes: values.yes === true });
    case 'ui':
      return (await import('./ui-command.js')).uiCommand(path, ui);
    case 'demo': {
      const scale = positiveNumber(values, 'scale', 0.3);
      const seconds = positiveNumber(values, 'seconds', 20);
      return (await import('./demo-command.js')).demoCommand({ scale, seconds, ui: values.ui ? ui : undefined });
    }
  }
  return 2;
}

export interface UiFlags {
  host: string;
  port: number;
  token?: string;
}

function uiFlags(values: Record<string, string | boolean | undefined>, prefix: string): UiFlags {
  const port = values[`${prefix}port`];
  const n = port === undefined ? 4280 : Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`\`--${prefix}port\` takes a port number (0-65535), not \`${String(port)}\``);
  const token = values[`${prefix}token`];
  return { host: String(values[`${prefix}host`] ?? '127.0.0.1'), port: n, token: typeof token === 'string' ? token : undefined };
}

function help(spec: CommandSpec): number {
  process.stdout.write(commandHelp(spec));
  return 0;
}

const DEPLOYMENT = {
  'state-machine': { type: 'string', value: 'ARN', help: 'the deployed state machine (default: FERRY_STATE_MACHINE_ARN or .sst/outputs.json)' },
  'state-table': { type: 'string', value: 'NAME', help: 'the deployed DynamoDB state table (default: FERRY_STATE_TABLE or .sst/outputs.json)' },
} as const;

const awsSpec = (sub: string, summary: string, options: Record<string, OptionSpec> = {}): CommandSpec => ({
  name: `aws ${sub}`,
  summary,
  positionals: CONFIG,
  options: { ...DEPLOYMENT, ...options },
});

export const AWS_COMMANDS: Record<string, CommandSpec> = {
  start: awsSpec('start', 'start the deployed workflow with this config and follow it to its end', {
    'no-follow': { type: 'boolean', help: 'return once the execution has started' },
  }),
  status: awsSpec('status', "the flow's state from DynamoDB and the workflow's recent executions"),
  stop: awsSpec('stop', 'cutover: the Fargate streamer drains up to the source position, sets sequences and exits; then verify'),
  verify: awsSpec('verify', 'compare source and target by per-range checksums, from this machine'),
  cleanup: awsSpec('cleanup', 'drop the replication slot and publication once the flow is stopped'),
  ui: awsSpec('ui', 'the live dashboard of a flow of the AWS runtime, read from its DynamoDB state table', {
    host: { type: 'string', value: 'HOST', help: 'address to listen on (default 127.0.0.1; any other needs --token or gets a random one)' },
    port: { type: 'string', value: 'PORT', help: 'port (default 4280; 0 picks a free one)' },
    token: { type: 'string', value: 'TOKEN', help: 'a secret the dashboard asks for (required off 127.0.0.1)' },
  }),
};

/** `ferry aws <sub> <config.yaml> [options]`: each subcommand parsed as strictly as the others. */
async function aws(rest: string[]): Promise<number> {
  const [sub, ...args] = rest;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    const lines = Object.entries(AWS_COMMANDS).map(([k, c]) => `  ${k.padEnd(8)} ${c.summary}`);
    process.stdout.write(`ferry aws <subcommand> <config.yaml> [options]\n\n${lines.join('\n')}\n`);
    return sub === undefined ? 2 : 0;
  }
  const spec = AWS_COMMANDS[sub];
  if (!spec) {
    const near = suggest(sub, Object.keys(AWS_COMMANDS));
    throw new UsageError(`unknown subcommand \`ferry aws ${sub}\`${near ? `: did you mean \`ferry aws ${near}\`?` : ''}`, 'aws');
  }
  const { positionals, values, help: wantsHelp } = parseCommand(spec, args);
  if (wantsHelp) return help(spec);
  const { awsCommand } = await import('./aws-command.js');
  return awsCommand(sub, positionals[0]!, {
    stateMachine: values['state-machine'] as string | undefined,
    stateTable: values['state-table'] as string | undefined,
    follow: values['no-follow'] !== true,
    ui: sub === 'ui' ? uiFlags(values, '') : undefined,
  });
}
