import { existsSync } from 'node:fs';
import { SqliteStateStore } from '../adapters/sqlite/sqlite-state-store.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { FerryError } from '../core/errors.js';
import type { Phase } from '../core/progress.js';
import { ActivityRecorder, RUN_ERROR_CHECKPOINT, type Activity, type RunError } from '../progress/activity.js';
import { redactUrl } from '../progress/logger.js';
import { teeProgress } from '../progress/summary.js';
import { flowIdOf } from '../runtime/local/flow-id.js';
import { runFlow, type LocalRunResult } from '../runtime/local/run-flow.js';
import { superviseStream } from '../runtime/supervise-stream.js';
import { serveFlow, type ServedFlow } from '../ui/serve-flow.js';
import type { UiFlags } from './main.js';
import { reportError } from './report-error.js';
import { progressFor } from './sinks.js';

/**
 * `ferry run`: exit 0 when done (or when streaming stopped cleanly on a signal, checkpointed), 130 when a snapshot
 * was interrupted (run again to resume), 1 on error (recorded in the state store for `ferry status` and the dashboard).
 */
export async function runCommand(path: string, opts: { ui?: UiFlags } = {}): Promise<number> {
  const config = await loadConfigFile(path);
  const progress = progressFor();
  const stop = new AbortController();
  let streaming = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(130); // second signal: leave now; state is consistent anyway
    progress.sink.warn(
      streaming
        ? `${sig}: committing the changes applied so far, then stopping (again to quit at once)`
        : `${sig}: finishing the chunks in flight, then stopping (again to quit at once)`,
    );
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const once = () =>
      runWithActivity(config, {
        progress: progress.sink,
        signal: stop.signal,
        ui: opts.ui,
        onPhase: (p) => (streaming ||= p === 'streaming'),
        onUrl: (url) => process.stderr.write(`ferry: dashboard at ${url}\n`),
        onCounts: (counts) => progress.setChangeCounts(counts),
      });
    // A flow that was already streaming is restarted by an operator or a service manager, possibly while one of its
    // databases is down: it waits for them (connection errors retried with backoff, like a reconnect while
    // streaming) instead of exiting. A new flow still fails fast on an unreachable endpoint (a wrong config, most
    // likely).
    const result = (await wasStreaming(config))
      ? await superviseStream(once, { signal: stop.signal, warn: (m) => progress.sink.warn(m) })
      : await once();
    if (!result) {
      progress.close();
      return 130;
    }
    progress.close();
    if (result.interrupted && !streaming) {
      process.stderr.write(`ferry: stopped; run the same command again to resume flow ${result.flow}\n`);
      return 130;
    }
    if (streaming) process.stderr.write(`ferry: streaming stopped and checkpointed; \`ferry run\` resumes it\n`);
    return 0;
  } catch (err) {
    progress.close();
    return reportError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function wasStreaming(config: LoadedConfig): Promise<boolean> {
  if (!existsSync(config.state.path)) return false;
  const store = new SqliteStateStore(config.state.path);
  try {
    const phase = (await store.getFlow(flowIdOf(config)))?.phase;
    return phase === 'streaming' || phase === 'stopping';
  } finally {
    await store.close();
  }
}

export interface ActivityRunOptions {
  progress: import('../core/progress.js').ProgressSink;
  signal: AbortSignal;
  ui?: UiFlags;
  onPhase?: (phase: Phase) => void;
  onUrl?: (url: string) => void;
  /** Receives the per-table change counts, for a live view. */
  onCounts?: (counts: () => Activity['tables']) => void;
}

/**
 * runFlow, plus what other processes show: recent warnings and per-table change counts (checkpoint `activity`),
 * and on failure its cause (checkpoint `run-error`) so that `ferry status` says what failed. Optionally the
 * dashboard. Shared by `ferry run` and the demo.
 */
export async function runWithActivity(config: LoadedConfig, opts: ActivityRunOptions): Promise<LocalRunResult> {
  const flow = flowIdOf(config);
  const side = new SqliteStateStore(config.state.path);
  const recorder = new ActivityRecorder(side, flow).start();
  opts.onCounts?.(() => recorder.tables());
  let phase: Phase | 'starting' = 'starting';
  let served: ServedFlow | undefined;
  try {
    await side.putCheckpoint(flow, RUN_ERROR_CHECKPOINT, null);
    if (opts.ui) {
      served = await serveFlow(config, opts.ui);
      opts.onUrl?.(served.dashboard.openUrl);
    }
    const watch = {
      ...recorder.sink(),
      phase: (p: Phase) => {
        phase = p;
        opts.onPhase?.(p);
      },
    };
    const tee = teeProgress(opts.progress, watch);
    const sink = { ...tee, streamed: (i: Parameters<NonNullable<typeof opts.progress.streamed>>[0]) => {
      opts.progress.streamed?.(i);
      recorder.streamed(i);
    } };
    return await runFlow({ config, progress: sink, signal: opts.signal, instrument: (cdc) => recorder.instrument(cdc) });
  } catch (err) {
    // Another live runner is not this flow failing: leave the record to the runner that holds it.
    if (!(err instanceof FerryError && /another ferry process is running/.test(err.message))) {
      const e = err as { message?: string; hint?: string };
      const record: RunError = { at: Date.now(), phase, message: redactUrl(e.message ?? String(err)), ...(e.hint ? { hint: e.hint } : {}) };
      await side.putCheckpoint(flow, RUN_ERROR_CHECKPOINT, record as unknown as import('../core/model.js').Json).catch(() => {});
    }
    throw err;
  } finally {
    await recorder.stop();
    await served?.close();
    await side.close();
  }
}
