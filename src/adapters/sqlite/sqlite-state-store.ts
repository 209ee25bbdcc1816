/**
 * StateStore on a local SQLite file, for the local runner and the CLI.
 *
 * better-sqlite3 is synchronous; the methods are `async` only to satisfy the port. The file is opened in WAL mode
 * so that a second process (`ferry status` in another terminal) can read while `ferry run` writes, and with a busy
 * timeout so that two writers wait for each other instead of failing with SQLITE_BUSY. Every read-modify-write
 * runs as a single conditional statement or inside an IMMEDIATE transaction (write lock taken up front), which is
 * what makes leases and "done is final" hold across processes, not only across calls in this one.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FlowRecord, JobRecord, JobStatus, Json, Position } from '../../core/model.js';
import type { JobCounts, JobProgress, StateStore } from '../../core/ports/state-store.js';

/** How long a writer waits for another process's lock before giving up. Writes here are tiny, so this is ample. */
const BUSY_TIMEOUT_MS = 10_000;

// Column names avoid SQL keywords (range, rows, table) so no statement needs quoting.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS flows (
  id TEXT PRIMARY KEY,
  phase TEXT NOT NULL,
  summary_json TEXT NOT NULL,
  tables_json TEXT NOT NULL,
  ranges_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  error TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
  flow TEXT NOT NULL,
  id TEXT NOT NULL,
  tbl TEXT NOT NULL,
  range_json TEXT NOT NULL,
  label TEXT NOT NULL,
  estimated_rows INTEGER NOT NULL,
  status TEXT NOT NULL,
  cursor_json TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  row_count INTEGER NOT NULL,
  byte_count INTEGER NOT NULL,
  lease_owner TEXT,
  lease_until INTEGER,
  error TEXT,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (flow, id)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (flow, status, id);
CREATE TABLE IF NOT EXISTS checkpoints (
  flow TEXT NOT NULL,
  name TEXT NOT NULL,
  position_json TEXT NOT NULL,
  PRIMARY KEY (flow, name)
);
CREATE TABLE IF NOT EXISTS leases (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  until INTEGER NOT NULL
);
`;

interface FlowRow {
  id: string;
  phase: string;
  summary_json: string;
  tables_json: string;
  ranges_json: string;
  created_at: number;
  updated_at: number;
  error: string | null;
}

interface JobRow {
  flow: string;
  id: string;
  tbl: string;
  range_json: string;
  label: string;
  estimated_rows: number;
  status: string;
  cursor_json: string;
  attempts: number;
  row_count: number;
  byte_count: number;
  lease_owner: string | null;
  lease_until: number | null;
  error: string | null;
  updated_at: number;
}

export class SqliteStateStore implements StateStore {
  private readonly db: Database.Database;

  /** `path` is a file (parent directories are created) or `:memory:`. */
  constructor(readonly path: string) {
    if (path !== ':memory:' && path !== '') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    // busy_timeout first: switching to WAL and creating the schema already need a lock another process may hold.
    this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode cannot corrupt the file; a power cut may lose the last commits, which are replayed as
    // idempotent work (jobs restart from their cursor, CDC from its checkpoint).
    this.db.pragma('synchronous = NORMAL');
    this.db.transaction(() => this.db.exec(SCHEMA)).immediate();
  }

  static async open(path: string): Promise<SqliteStateStore> {
    return new SqliteStateStore(path);
  }

  async createFlow(flow: FlowRecord): Promise<FlowRecord> {
    // Insert-if-absent and read back in one write transaction: whoever created it first wins, here or elsewhere.
    return this.db
      .transaction(() => {
        this.db
          .prepare(
            `INSERT INTO flows (id, phase, summary_json, tables_json, ranges_json, created_at, updated_at, error)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
          )
          .run(
            flow.id,
            flow.phase,
            JSON.stringify(flow.summary),
            JSON.stringify(flow.tables),
            JSON.stringify(flow.ranges),
            flow.createdAt,
            flow.updatedAt,
            flow.error ?? null,
          );
        return this.readFlow(flow.id)!;
      })
      .immediate();
  }

  async getFlow(id: string): Promise<FlowRecord | undefined> {
    return this.readFlow(id);
  }

  async updateFlow(id: string, patch: Partial<Pick<FlowRecord, 'phase' | 'error' | 'tables'>>): Promise<void> {
    const sets = ['updated_at = @now'];
    const params: Record<string, unknown> = { id, now: Date.now() };
    if (patch.phase !== undefined) (sets.push('phase = @phase'), (params.phase = patch.phase));
    if (patch.tables) (sets.push('tables_json = @tables'), (params.tables = JSON.stringify(patch.tables)));
    // A present-but-undefined `error` clears it (a resumed flow should stop showing the old failure).
    if ('error' in patch) (sets.push('error = @error'), (params.error = patch.error ?? null));
    const res = this.db.prepare(`UPDATE flows SET ${sets.join(', ')} WHERE id = @id`).run(params);
    if (res.changes === 0) throw new Error(`updateFlow: no flow ${id}`);
  }

  async addJobs(jobs: JobRecord[]): Promise<void> {
    // DO NOTHING on the key only, unlike INSERT OR IGNORE which would also swallow NOT NULL violations.
    const insert = this.db.prepare(
      `INSERT INTO jobs (flow, id, tbl, range_json, label, estimated_rows, status, cursor_json, attempts, row_count,
                         byte_count, lease_owner, lease_until, error, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (flow, id) DO NOTHING`,
    );
    this.db
      .transaction(() => {
        for (const j of jobs) {
          insert.run(
            j.flow,
            j.id,
            j.table,
            JSON.stringify(j.range),
            j.label,
            j.estimatedRows,
            j.status,
            JSON.stringify(j.cursor),
            j.attempts,
            j.rows,
            j.bytes,
            j.leaseOwner ?? null,
            j.leaseUntil ?? null,
            j.error ?? null,
            j.updatedAt,
          );
        }
      })
      .immediate();
  }

  async getJob(flow: string, id: string): Promise<JobRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM jobs WHERE flow = ? AND id = ?').get(flow, id) as JobRow | undefined;
    return row && toJob(row);
  }

  async listJobs(flow: string, status?: JobStatus): Promise<JobRecord[]> {
    // Ordered by id (binary collation = UTF-8 byte order), the same order DynamoDB's sort keys give.
    const rows = (
      status === undefined
        ? this.db.prepare('SELECT * FROM jobs WHERE flow = ? ORDER BY id').all(flow)
        : this.db.prepare('SELECT * FROM jobs WHERE flow = ? AND status = ? ORDER BY id').all(flow, status)
    ) as JobRow[];
    return rows.map(toJob);
  }

  async countJobs(flow: string): Promise<Record<string, JobCounts>> {
    const rows = this.db
      .prepare(
        `SELECT tbl, COUNT(*) AS total,
                SUM(status = 'pending') AS pending, SUM(status = 'running') AS running,
                SUM(status = 'done') AS done, SUM(status = 'failed') AS failed,
                SUM(row_count) AS rows, SUM(byte_count) AS bytes, SUM(estimated_rows) AS estimatedRows
         FROM jobs WHERE flow = ? GROUP BY tbl ORDER BY tbl`,
      )
      .all(flow) as (JobCounts & { tbl: string })[];
    const out: Record<string, JobCounts> = {};
    for (const { tbl, ...counts } of rows) out[tbl] = counts;
    return out;
  }

  async startJob(flow: string, id: string, owner: string, leaseUntil: number): Promise<boolean> {
    // Only `done` refuses: the port makes done final and nothing else (a failed job may be started by a resume).
    const res = this.db
      .prepare(
        `UPDATE jobs SET status = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
         WHERE flow = ? AND id = ? AND status <> 'done'`,
      )
      .run(owner, leaseUntil, Date.now(), flow, id);
    return res.changes > 0;
  }

  async recordProgress(flow: string, id: string, progress: JobProgress, leaseUntil: number): Promise<void> {
    // A late call from a worker that lost its job must not rewrite a done job's final numbers.
    this.db
      .prepare(
        `UPDATE jobs SET cursor_json = ?, row_count = ?, byte_count = ?, lease_until = ?, updated_at = ?
         WHERE flow = ? AND id = ? AND status <> 'done'`,
      )
      .run(JSON.stringify(progress.cursor), progress.rows, progress.bytes, leaseUntil, Date.now(), flow, id);
  }

  async finishJob(flow: string, id: string, progress: JobProgress): Promise<void> {
    this.db
      .prepare(
        `UPDATE jobs SET status = 'done', cursor_json = ?, row_count = ?, byte_count = ?, lease_owner = NULL,
                         lease_until = NULL, error = NULL, updated_at = ?
         WHERE flow = ? AND id = ? AND status <> 'done'`,
      )
      .run(JSON.stringify(progress.cursor), progress.rows, progress.bytes, Date.now(), flow, id);
  }

  async failJob(flow: string, id: string, error: string, final: boolean): Promise<void> {
    // The cursor stays, so the retry resumes where the failed attempt last committed.
    this.db
      .prepare(
        `UPDATE jobs SET status = ?, error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
         WHERE flow = ? AND id = ? AND status <> 'done'`,
      )
      .run(final ? 'failed' : 'pending', error, Date.now(), flow, id);
  }

  async getCheckpoint(flow: string, name: string): Promise<Position | undefined> {
    const row = this.db.prepare('SELECT position_json FROM checkpoints WHERE flow = ? AND name = ?').get(flow, name) as
      | { position_json: string }
      | undefined;
    return row && (JSON.parse(row.position_json) as Json);
  }

  async putCheckpoint(flow: string, name: string, position: Position): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO checkpoints (flow, name, position_json) VALUES (?, ?, ?)
         ON CONFLICT (flow, name) DO UPDATE SET position_json = excluded.position_json`,
      )
      .run(flow, name, JSON.stringify(position));
  }

  async acquireLease(name: string, owner: string, until: number): Promise<boolean> {
    // One conditional upsert: insert when free, else take it only if we hold it or it has expired. `changes` is 0
    // exactly when the WHERE of DO UPDATE refused. IMMEDIATE so the check and the write see the same state across
    // processes.
    return this.db
      .transaction(() => {
        const res = this.db
          .prepare(
            `INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
             WHERE leases.owner = excluded.owner OR leases.until <= ?`,
          )
          .run(name, owner, until, Date.now());
        return res.changes > 0;
      })
      .immediate();
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    this.db.prepare('DELETE FROM leases WHERE name = ? AND owner = ?').run(name, owner);
  }

  async leaseOwner(name: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT owner FROM leases WHERE name = ? AND until > ?').get(name, Date.now()) as { owner: string } | undefined;
    return row?.owner;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private readFlow(id: string): FlowRecord | undefined {
    const row = this.db.prepare('SELECT * FROM flows WHERE id = ?').get(id) as FlowRow | undefined;
    if (!row) return undefined;
    const flow: FlowRecord = {
      id: row.id,
      phase: row.phase as FlowRecord['phase'],
      summary: JSON.parse(row.summary_json) as Json,
      tables: JSON.parse(row.tables_json) as FlowRecord['tables'],
      ranges: JSON.parse(row.ranges_json) as FlowRecord['ranges'],
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
    if (row.error !== null) flow.error = row.error;
    return flow;
  }
}

function toJob(row: JobRow): JobRecord {
  const job: JobRecord = {
    flow: row.flow,
    id: row.id,
    table: row.tbl,
    range: JSON.parse(row.range_json) as Json,
    label: row.label,
    estimatedRows: row.estimated_rows,
    status: row.status as JobStatus,
    cursor: JSON.parse(row.cursor_json) as Json,
    attempts: row.attempts,
    rows: row.row_count,
    bytes: row.byte_count,
    updatedAt: row.updated_at,
  };
  // Optional fields are absent rather than undefined/null, so records compare equal to what was added.
  if (row.lease_owner !== null) job.leaseOwner = row.lease_owner;
  if (row.lease_until !== null) job.leaseUntil = row.lease_until;
  if (row.error !== null) job.error = row.error;
  return job;
}
