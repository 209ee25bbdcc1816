/**
 * One flow's `ferry run`, as the fault driver sees it: started as a child process, killed with SIGKILL, started
 * again, and its exits that nobody asked for recorded (and, if asked, followed by a restart). The flow's phase and
 * checkpoint are read from its SQLite state file, as `ferry status` reads them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteStateStore } from '../../src/adapters/sqlite/sqlite-state-store.js';
import { CDC_CHECKPOINT } from '../../src/core/cdc/streamer.js';
import type { FlowPhase } from '../../src/core/model.js';
import { ferry, startFerry, type Running } from '../support/ferry-cli.js';

export interface UnexpectedExit {
  code: number | null;
  signal: string | null;
  /** How long that process had run. */
  afterMs: number;
  /** The end of its stderr: the error it reported. */
  stderr: string;
}

const ORDER: FlowPhase[] = ['planned', 'snapshot', 'finalizing', 'streaming', 'stopping', 'stopped'];
/** True when `phase` is `want` or later in a flow's life. */
export const reached = (phase: FlowPhase | undefined, want: FlowPhase) => phase !== undefined && ORDER.indexOf(phase) >= ORDER.indexOf(want);

export class FerryProcess {
  private run?: Running;
  private expectingExit = false;
  private store: SqliteStateStore;
  startedAt = 0;
  /** Processes started after the first one. */
  restarts = 0;
  unexpectedExits: UnexpectedExit[] = [];

  constructor(
    readonly config: string,
    readonly statePath: string,
    readonly flow: string,
    private opts: { restartOnExit: boolean; log: (line: string) => void },
  ) {
    this.store = new SqliteStateStore(statePath);
  }

  get pid(): number | undefined {
    return this.run?.child.pid;
  }

  start(): void {
    if (this.run) throw new Error('ferry run is already running');
    if (this.startedAt > 0) this.restarts++;
    this.startedAt = Date.now();
    this.expectingExit = false;
    // warn: what the process reports is in its stderr, for the failure message.
    const verbose = process.env.FERRY_FAULT_VERBOSE === '1';
    const run = startFerry(['run', this.config], { FERRY_LOG_LEVEL: verbose ? 'info' : 'warn' });
    this.run = run;
    // FERRY_FAULT_VERBOSE=1: every line the process writes to stderr (info: reconnects and their delays, the
    // streaming status every 5 s), as it comes.
    if (verbose) {
      let rest = '';
      run.child.stderr?.on('data', (d: Buffer) => {
        const lines = (rest + d.toString()).split('\n');
        rest = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) this.opts.log(`  ferry: ${l.length > 300 ? `${l.slice(0, 300)}…` : l}`);
      });
    }
    const started = this.startedAt;
    void run.exited.then(async (r) => {
      if (this.run === run) this.run = undefined;
      if (this.expectingExit) return;
      const exit = { code: r.code, signal: r.signal, afterMs: Date.now() - started, stderr: tail(r.stderr) };
      this.unexpectedExits.push(exit);
      this.opts.log(`ferry run exited by itself (code ${r.code}) after ${(exit.afterMs / 1000).toFixed(1)} s: ${errorLines(exit.stderr)}`);
      if (this.opts.restartOnExit) {
        await sleep(1000);
        if (!this.run && !this.expectingExit) this.start();
      }
    });
  }

  running(): boolean {
    return this.run !== undefined;
  }

  async kill(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.expectingExit = true;
    run.child.kill('SIGKILL');
    await run.exited;
    this.run = undefined;
  }

  /** `ferry stop` (drain) and the run's own exit; returns what went wrong, if anything. */
  async drainAndStop(timeoutMs = 120_000): Promise<string | undefined> {
    const run = this.run;
    if (!run) return 'ferry run was not running at the stop';
    this.expectingExit = true;
    const stop = await ferry(['stop', this.config]);
    if (stop.code !== 0) return `ferry stop exited ${stop.code}: ${tail(stop.stderr)}`;
    const cancel = new AbortController();
    const timer = sleep(timeoutMs, undefined, { signal: cancel.signal }).then(() => 'timeout' as const, () => 'timeout' as const);
    const ended = await Promise.race([run.exited, timer]);
    cancel.abort();
    if (ended === 'timeout') {
      await this.kill();
      return `ferry run did not exit within ${timeoutMs / 1000} s of \`ferry stop\``;
    }
    this.run = undefined;
    return ended.code === 0 ? undefined : `ferry run exited ${ended.code} after \`ferry stop\`: ${tail(ended.stderr)}`;
  }

  async phase(): Promise<FlowPhase | undefined> {
    return (await this.store.getFlow(this.flow))?.phase;
  }

  async checkpoint(): Promise<string | undefined> {
    const p = await this.store.getCheckpoint(this.flow, CDC_CHECKPOINT);
    return p === undefined ? undefined : JSON.stringify(p);
  }

  /** Rows the snapshot has committed so far, over all tables. */
  async rowsCopied(): Promise<number> {
    const counts = await this.store.countJobs(this.flow);
    return Object.values(counts).reduce((n, c) => n + c.rows, 0);
  }

  async close(): Promise<void> {
    await this.kill();
    await this.store.close();
  }
}

/** The lines of a process's stderr that say what went wrong (its error, not the stack frames under it). */
export function errorLines(stderr: string, max = 3): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('at ') && !/^Node\.js v/.test(l));
  // `ferry: error: …` and its advice, or the thrown error of a crash (not node's "Emitted 'error' event" or `throw er`).
  const errors = lines.filter((l) => /^ferry: |^what to do|^\w*Error\b|\bError: /.test(l) && !/^Emitted|^throw /.test(l));
  return (errors.length > 0 ? errors : lines).slice(-max).join(' | ');
}

function tail(s: string, n = 1500): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}
