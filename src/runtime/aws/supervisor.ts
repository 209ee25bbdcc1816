/**
 * The streamer's supervisor: EventBridge delivers every ECS "Task State Change" of a streamer task that reached
 * STOPPED (infra/supervisor.ts), and this starts a replacement unless the flow no longer wants a streamer (stopped,
 * done, failed). Whatever ended the task (an OOM kill, exit 1, a stall, a Fargate retirement, a `stop-task`), the
 * flow keeps streaming; the only way to end it is `ferry aws stop`. Only the flow id crosses: it is read from the
 * stopped task's own RunTask override.
 */
import type { StateStore } from '../../core/ports/state-store.js';
import type { StreamerLauncher } from './launcher.js';
import { STREAMING_PHASES } from './streamer-process.js';

/** The part of an ECS Task State Change event the supervisor reads. */
export interface TaskStoppedEvent {
  detail?: {
    lastStatus?: string;
    stoppedReason?: string;
    stopCode?: string;
    containers?: { name?: string; exitCode?: number; reason?: string }[];
    overrides?: { containerOverrides?: { environment?: { name?: string; value?: string }[] }[] };
    taskArn?: string;
  };
}

export type SupervisorDecision =
  | { action: 'ignored'; why: string }
  | { action: 'relaunched'; flow: string; task: string; exitCode: number | null; reason: string };

/** The flow of a stopped streamer task; undefined for other tasks, including the same image run as Finalize. */
export function flowOfTask(event: TaskStoppedEvent): string | undefined {
  for (const o of event.detail?.overrides?.containerOverrides ?? []) {
    const env = o.environment ?? [];
    if (env.some((e) => e.name === 'FERRY_TASK' && e.value && e.value !== 'stream')) return undefined;
    const v = env.find((e) => e.name === 'FERRY_FLOW')?.value;
    if (v) return v;
  }
  return undefined;
}

export async function superviseStreamer(store: StateStore, launcher: StreamerLauncher, event: TaskStoppedEvent): Promise<SupervisorDecision> {
  if (event.detail?.lastStatus !== 'STOPPED') return { action: 'ignored', why: `task is ${event.detail?.lastStatus ?? 'unknown'}, not STOPPED` };
  const flow = flowOfTask(event);
  if (!flow) return { action: 'ignored', why: 'not a streamer task (no FERRY_FLOW in its overrides)' };
  const record = await store.getFlow(flow);
  if (!record) return { action: 'ignored', why: `flow ${flow} is not in the state store` };
  if (!(STREAMING_PHASES as readonly string[]).includes(record.phase)) return { action: 'ignored', why: `flow ${flow} is ${record.phase}` };
  const container = event.detail.containers?.[0];
  const task = await launcher.launch(flow);
  return {
    action: 'relaunched',
    flow,
    task,
    exitCode: container?.exitCode ?? null,
    reason: [event.detail.stopCode, event.detail.stoppedReason, container?.reason].filter(Boolean).join(': ') || 'unknown',
  };
}
