/** Run the real `ferry` CLI as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The real binary: the TypeScript sources through tsx, as a user runs it. */
export const REAL_BIN = join(import.meta.dirname, '..', '..', 'bin', 'ferry.js');

/**
 * What the tests start: under vitest, the same sources transpiled once for the run (test/support/cli-build.ts,
 * a process start without tsx's loader); elsewhere (the fault suite, a script), the real binary.
 */
const BIN = process.env.FERRY_PREBUILT_CLI || REAL_BIN;

export interface Running {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

const children = new Set<ChildProcess>();

/** Kill every ferry child still running (a failed test must not leave a streamer holding the servers open). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

export function startFerry(args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN): Running {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  children.add(child);
  child.once('exit', () => children.delete(child));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, exited };
}

export async function ferry(args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN) {
  return startFerry(args, env, bin).exited;
}

/** Write a config file (JSON is valid YAML) with a fresh state path; returns its path. */
export function writeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-cfg-'));
  const path = join(dir, 'ferry.yaml');
  writeFileSync(path, JSON.stringify({ state: { path: join(dir, 'state.db') }, ...config }, null, 2));
  return path;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The flow's phase as `ferry status --json` reports it ('failed' when the last run recorded an error), read
 * in-process from the state store. Polling through the CLI cost a process start (about 1.5 s of CPU under tsx)
 * per poll, which took a core from the very run being waited on; the assertions on `ferry status`'s own output
 * stay on the CLI.
 */
export async function flowPhase(configPath: string): Promise<string | undefined> {
  const [{ loadConfigFile }, { openLocalStateStore }, { flowIdOf }, { RUN_ERROR_CHECKPOINT }] = await Promise.all([
    import('../../src/config/load.js'),
    import('../../src/runtime/local/state.js'),
    import('../../src/runtime/local/flow-id.js'),
    import('../../src/progress/activity.js'),
  ]);
  const config = await loadConfigFile(configPath);
  if (!existsSync(config.state.path)) return undefined;
  const store = await openLocalStateStore(config.state.path);
  try {
    const id = flowIdOf(config);
    if (await store.getCheckpoint(id, RUN_ERROR_CHECKPOINT)) return 'failed';
    return (await store.getFlow(id))?.phase;
  } finally {
    await store.close();
  }
}

/** Wait until the flow reaches `phase`; with `run`, fail at once (with its output) if that process exits first. */
export async function waitForPhase(configPath: string, phase: string, timeoutMs = 60_000, run?: Running): Promise<void> {
  let ended: { code: number | null; stderr: string } | undefined;
  void run?.exited.then((e) => (ended = e));
  await waitFor(`phase ${phase}`, async () => {
    if ((await flowPhase(configPath).catch(() => undefined)) === phase) return true;
    if (ended) throw new Error(`ferry exited (code ${ended.code}) before phase ${phase}:\n${ended.stderr.slice(-2000)}`);
    return false;
  }, timeoutMs);
}
