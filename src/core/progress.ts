/**
 * What the core reports while it works. Sinks (TTY bars, JSON log lines, nothing) implement it; the core never
 * formats output itself. All calls are fire-and-forget and must not throw.
 */
export interface TablePlan {
  /** Source table key `schema.name`. */
  table: string;
  /** Target table key. */
  target: string;
  estimatedRows: number;
  estimatedBytes: number;
  jobs: number;
  /** Rows and jobs already done by an earlier run of the same flow (resume). */
  doneRows: number;
  doneBytes: number;
  doneJobs: number;
}

export type Phase = 'preflight' | 'plan' | 'snapshot' | 'finalize' | 'streaming' | 'stopped' | 'done';

export interface ProgressSink {
  phase(phase: Phase, detail?: string): void;
  planned(tables: TablePlan[]): void;
  /** A chunk was committed on the target. */
  copied(table: string, rows: number, bytes: number): void;
  jobDone(table: string, jobId: string): void;
  jobRetry(table: string, jobId: string, label: string, error: string, attempt: number): void;
  warn(message: string): void;
  /** Streaming: a target commit of `transactions` source transactions; `lagMs` behind the source's commit time. */
  streamed?(info: { changes: number; transactions: number; lagMs: number; position: string }): void;
  /** Stop drawing (before the summary or an error is printed). */
  close(): void;
}

export const silentProgress: ProgressSink = {
  phase() {},
  planned() {},
  copied() {},
  jobDone() {},
  jobRetry() {},
  warn() {},
  close() {},
};
