/**
 * The streamer's health signal. Every `intervalMs` it samples the slot (bytes the source has that the target has not
 * confirmed, WAL retained) and the flow's checkpoint. A healthy stream moves its checkpoint at least once per
 * heartbeat, even on an idle source (the heartbeat is itself a change), so a checkpoint that has not moved for
 * `stallMs` while the source has WAL to send is a stall: a hung connection, a wedged apply, a lost keepalive.
 * The streamer then exits non-zero and its supervisor starts a fresh one. Each sample is also published (metrics).
 */
import type { LagInfo } from '../../core/ports/change-source.js';
import type { Position } from '../../core/model.js';

export interface HealthSample {
  lag: LagInfo | undefined;
  checkpoint: Position | undefined;
  /** Seconds between the source's commit and its apply, of the last applied transaction or heartbeat. */
  lagSeconds?: number;
}

export interface HealthOptions {
  intervalMs: number;
  stallMs: number;
  sample: () => Promise<HealthSample>;
  onSample?: (sample: HealthSample & { stalledForMs: number }) => void;
  onStall: (reason: string) => void;
}

/** Starts watching; returns the function that stops it. A failed sample is skipped (the next one retries). */
export function watchStream(opts: HealthOptions): () => void {
  let lastCheckpoint: string | undefined;
  let movedAt = Date.now();
  let stalled = false;
  const tick = async () => {
    const s = await opts.sample();
    const now = Date.now();
    const key = JSON.stringify(s.checkpoint ?? null);
    // Nothing to send counts as progress: an idle slot with everything confirmed is healthy.
    if (key !== lastCheckpoint || !s.lag || (s.lag.lagBytes ?? 0) <= 0) {
      lastCheckpoint = key;
      movedAt = now;
    }
    const stalledForMs = now - movedAt;
    opts.onSample?.({ ...s, stalledForMs });
    if (!stalled && stalledForMs >= opts.stallMs) {
      stalled = true;
      opts.onStall(
        `stalled: the checkpoint has not moved for ${Math.round(stalledForMs / 1000)} s while the source has ` +
          `${s.lag?.lagBytes ?? 0} bytes of WAL to send`,
      );
    }
  };
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    tick()
      .catch(() => {})
      .finally(() => (running = false));
  }, opts.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * One CloudWatch embedded-metric-format line: CloudWatch Logs turns it into metrics in namespace `Ferry`, once per
 * flow (dimension Flow, for the dashboard) and once across flows (no dimension, for the alarms, which need not
 * know flow ids). See infra/alarms.ts.
 */
export function emfLine(flow: string, metrics: Record<string, { value: number; unit: 'Seconds' | 'Bytes' | 'Count' }>, now = Date.now()): string {
  const names = Object.keys(metrics);
  const line: Record<string, unknown> = {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [{ Namespace: 'Ferry', Dimensions: [['Flow'], []], Metrics: names.map((Name) => ({ Name, Unit: metrics[Name]!.unit })) }],
    },
    Flow: flow,
  };
  for (const n of names) line[n] = metrics[n]!.value;
  return JSON.stringify(line);
}
