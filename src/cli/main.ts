/**
 * `ferry` command line. Thin: parses arguments, builds the sinks, calls a runtime, maps errors to exit codes.
 * Exit codes: 0 success, 1 failure (the message says what and what to do), 2 usage error, 130 interrupted.
 */
import { planCommand } from './plan-command.js';
import { runCommand } from './run-command.js';
import { statusCommand } from './status-command.js';

const USAGE = `ferry: move a live database to another one and keep it in sync

usage:
  ferry run <config.yaml>      copy (and with mode snapshot+cdc, stream) the selected tables
  ferry plan <config.yaml>     show the tables and ranges a run would copy; writes nothing
  ferry status <config.yaml>   show a flow's progress and streaming lag [--json]
  ferry verify <config.yaml>   compare source and target by per-range checksums [--repair] [--json]
  ferry stop <config.yaml>     drain the streamer up to the source's current position, then stop it [--no-wait]
  ferry cleanup <config.yaml>  drop the replication slot and publication, and Ferry's bookkeeping on the target
  ferry aws start <config.yaml>   start the deployed AWS workflow with this config and follow it [--no-follow]
  ferry aws status <config.yaml>  the flow's state in DynamoDB and its recent executions
  ferry demo [--scale N]       migrate a sample database between two embedded PostgreSQL servers
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const flags = new Set(rest.filter((a) => a.startsWith('--')));
  const args = rest.filter((a) => !a.startsWith('--'));
  switch (command) {
    case 'run':
      return needConfig(args, (path) => runCommand(path));
    case 'plan':
      return needConfig(args, (path) => planCommand(path));
    case 'status':
      return needConfig(args, (path) => statusCommand(path, { json: flags.has('--json') }));
    case 'verify':
      return needConfig(args, async (path) => (await import('./verify-command.js')).verifyCommand(path, { repair: flags.has('--repair'), json: flags.has('--json') }));
    case 'stop':
      return needConfig(args, async (path) => (await import('./stop-command.js')).stopCommand(path, { wait: !flags.has('--no-wait') }));
    case 'cleanup':
      return needConfig(args, async (path) => (await import('./cleanup-command.js')).cleanupCommand(path));
    case 'aws': {
      const { awsCommand } = await import('./aws-command.js');
      const valued = new Map<string, string>();
      rest.forEach((a, i) => {
        if (a.startsWith('--')) valued.set(a, rest[i + 1] && !rest[i + 1]!.startsWith('--') ? rest[i + 1]! : '');
      });
      const positional = rest.filter((a, i) => !a.startsWith('--') && !(i > 0 && rest[i - 1]!.startsWith('--state-')));
      return awsCommand(positional[0], positional[1], valued);
    }
    case 'demo': {
      const { demoCommand } = await import('./demo-command.js');
      const i = rest.indexOf('--scale');
      const scale = i >= 0 ? Number(rest[i + 1]) : 1;
      if (!(scale > 0)) return usage('--scale takes a positive number');
      return demoCommand({ scale });
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      return usage(`unknown command \`${command}\``);
  }
}

function needConfig(args: string[], fn: (path: string) => Promise<number>): Promise<number> {
  if (args.length !== 1) return Promise.resolve(usage('give exactly one config file, e.g. `ferry run ferry.yaml`'));
  return fn(args[0]!);
}

function usage(message: string): number {
  process.stderr.write(`ferry: ${message}\n\n${USAGE}`);
  return 2;
}
