/** Run the real `ferry` CLI as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The real binary, as a user runs it: the sources compiled once per version (bin/compiled.js), tsx as fallback. */
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
 * in-process from the state store; for `streaming` from a PostgreSQL source, also whether the flow's slot is active
 * (a streamer is connected), as `ferry status` shows it. Polling through the CLI cost a process start (about 1.5 s
 * of CPU under tsx) per poll, which took a core from the very run being waited on; the assertions on `ferry
 * status`'s own output stay on the CLI.
 */
export async function flowPhase(configPath: string): Promise<{ phase: string | undefined; slotActive?: boolean }> {
  const [{ loadConfigFile }, { openLocalStateStore }, { flowIdOf }, { RUN_ERROR_CHECKPOINT }, { engineOf }] = await Promise.all([
    import('../../src/config/load.js'),
    import('../../src/runtime/local/state.js'),
    import('../../src/runtime/local/flow-id.js'),
    import('../../src/progress/activity.js'),
    import('../../src/config/schema.js'),
  ]);
  const config = await loadConfigFile(configPath);
  if (!existsSync(config.state.path)) return { phase: undefined };
  const store = await openLocalStateStore(config.state.path);
  const id = flowIdOf(config);
  let phase: string | undefined;
  try {
    phase = (await store.getCheckpoint(id, RUN_ERROR_CHECKPOINT)) ? 'failed' : (await store.getFlow(id))?.phase;
  } finally {
    await store.close();
  }
  if (phase !== 'streaming' || engineOf(config.source) !== 'postgres') return { phase };
  const { PgChangeSource } = await import('../../src/adapters/postgres/cdc/change-source.js');
  const source = new PgChangeSource(config.source);
  try {
    return { phase, slotActive: (await source.lag(id).catch(() => undefined))?.active === true };
  } finally {
    await source.close();
  }
}

/**
 * Wait until the flow reaches `phase`; with `run`, fail at once (with its output) if that process exits first.
 *
 * `streaming` also waits for the flow's slot to be active: the phase is recorded before the streamer has started
 * (its schema hooks read the source catalog, then it connects to the slot), and a test that changes the source's
 * schema "while streaming" must not race that start. (Polling `ferry status` through the CLI hid the race: each
 * poll took seconds.)
 */
export async function waitForPhase(configPath: string, phase: string, timeoutMs = 60_000, run?: Running): Promise<void> {
  let ended: { code: number | null; stderr: string } | undefined;
  void run?.exited.then((e) => (ended = e));
  await waitFor(`phase ${phase}`, async () => {
    const now = await flowPhase(configPath).catch(() => undefined);
    if (now?.phase === phase && now.slotActive !== false) return true;
    if (ended) throw new Error(`ferry exited (code ${ended.code}) before phase ${phase}:\n${ended.stderr.slice(-2000)}`);
    return false;
  }, timeoutMs);
}
