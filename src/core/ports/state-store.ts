import type { FlowRecord, Job, JobRecord, JobStatus, Json, Position } from '../model.js';

export interface JobProgress {
  cursor: Json;
  rows: number;
  bytes: number;
}

export interface JobCounts {
  total: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  rows: number;
  bytes: number;
  estimatedRows: number;
}

/**
 * Durable memory of a flow: its plan, its jobs and its checkpoints. Every write is idempotent or conditional, so a
 * retried call (a Lambda run twice, a process restarted) leaves the same state.
 */
export interface StateStore {
  /** Create the flow if absent and return what is stored (the existing flow wins: resume, not re-plan). */
  createFlow(flow: FlowRecord): Promise<FlowRecord>;
  getFlow(id: string): Promise<FlowRecord | undefined>;
  updateFlow(id: string, patch: Partial<Pick<FlowRecord, 'phase' | 'error' | 'tables'>>): Promise<void>;

  /** Insert jobs that do not exist yet; existing jobs (same id) are left as they are. */
  addJobs(jobs: JobRecord[]): Promise<void>;
  getJob(flow: string, id: string): Promise<JobRecord | undefined>;
  listJobs(flow: string, status?: JobStatus): Promise<JobRecord[]>;
  countJobs(flow: string): Promise<Record<string, JobCounts>>;

  /** Mark a job running under `owner` until `leaseUntil` and count the attempt. No-op (false) if the job is done. */
  startJob(flow: string, id: string, owner: string, leaseUntil: number): Promise<boolean>;
  /** Record progress within the range and extend the lease. Called after the target committed that progress. */
  recordProgress(flow: string, id: string, progress: JobProgress, leaseUntil: number): Promise<void>;
  /** Done is final: a later `failJob` or `startJob` leaves a done job done. */
  finishJob(flow: string, id: string, progress: JobProgress): Promise<void>;
  /** `final`: no more retries. Otherwise the job goes back to pending with the error kept for display. */
  failJob(flow: string, id: string, error: string, final: boolean): Promise<void>;

  getCheckpoint(flow: string, name: string): Promise<Position | undefined>;
  /** Called only after the target committed everything up to `position`. */
  putCheckpoint(flow: string, name: string, position: Position): Promise<void>;

  /** Take or renew a named lease. True when `owner` holds it until `until`; false when another owner does. */
  acquireLease(name: string, owner: string, until: number): Promise<boolean>;
  releaseLease(name: string, owner: string): Promise<void>;
  /** Optional: who holds the lease now (unexpired), so a holder known to be gone need not be waited out. */
  leaseOwner?(name: string): Promise<string | undefined>;

  close(): Promise<void>;
}

export type { Job };
