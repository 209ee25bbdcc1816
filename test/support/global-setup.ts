/** Once per `vitest run`: the transpiled CLI (test/support/cli-build.ts), named to the test workers by FERRY_PREBUILT_CLI. */
import { buildCli } from './cli-build.js';

export default async function setup(): Promise<() => void> {
  if (process.env.FERRY_PREBUILT_CLI) return () => {};
  const cli = await buildCli();
  process.env.FERRY_PREBUILT_CLI = cli.entry;
  return () => cli.remove();
}
