/**
 * One execution per flow. Validate takes the lease `workflow:<flow>` for its execution (owner = execution ARN) and
 * never gives it back: a lease held by an execution that is no longer running is simply taken over by the next one,
 * so there is no TTL to outlive a long snapshot, no renewal to forget, and a crashed or aborted execution cannot
 * block the flow. A continued execution (the poll loop's continue-as-new) inherits its parent's lease.
 */
import { FerryError } from '../../core/errors.js';
import type { StateStore } from '../../core/ports/state-store.js';

/** Far in the future: the lease ends when its execution does (checked through Step Functions), not by time. */
const HELD_UNTIL_MS = 100 * 365 * 24 * 3600 * 1000;

export const workflowLeaseName = (flow: string) => `workflow:${flow}`;

/** Another execution of the same flow is running. Not retried; not recorded as the flow's failure. */
export class FlowBusyError extends FerryError {}

export interface ExecutionStatus {
  /** The status of an execution by ARN (`RUNNING`, `SUCCEEDED`, …), or undefined when it does not exist. */
  status(executionArn: string): Promise<string | undefined>;
}

export interface WorkflowLeaseRequest {
  flow: string;
  execution: string;
  /** The execution this one continues (its input's `ferryContinuedFrom`). */
  continuedFrom?: string;
}

/** The checkpoint naming the lease's holder (the port has no lease read; the holder writes it right after taking it). */
export const WORKFLOW_EXECUTION = 'workflow:execution';

export async function takeWorkflowLease(store: StateStore, executions: ExecutionStatus, req: WorkflowLeaseRequest): Promise<void> {
  const name = workflowLeaseName(req.flow);
  const until = () => Date.now() + HELD_UNTIL_MS;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await store.acquireLease(name, req.execution, until())) {
      await store.putCheckpoint(req.flow, WORKFLOW_EXECUTION, req.execution);
      return;
    }
    const holder = (await store.getCheckpoint(req.flow, WORKFLOW_EXECUTION)) as string | undefined;
    if (holder === undefined || holder === req.execution) continue; // written in between: try again
    const inherits = holder === req.continuedFrom;
    const status = inherits ? 'CONTINUED' : await executions.status(holder);
    if (status === 'RUNNING') {
      throw new FlowBusyError(
        `flow ${req.flow} is already being migrated by execution ${holder}`,
        'wait for it to finish, or stop it in the Step Functions console (`ferry aws status` lists the executions)',
      );
    }
    // The holder has ended (or this execution continues it): take the lease over, conditional on that holder.
    await store.releaseLease(name, holder);
  }
  throw new FlowBusyError(`flow ${req.flow}: could not take the workflow lease (other executions keep starting)`, 'start one execution at a time');
}
