/**
 * StateStore on one DynamoDB table, for the AWS runtime (Lambdas and ECS tasks share it).
 *
 * Single-table layout (all keys are strings):
 *   FLOW#<flow> / META                         the flow record (summary, phase, timestamps, which plan chunks)
 *   FLOW#<flow> / META#PLAN#<gen>#<n>          the flow's tables and ranges as one JSON, split in binary chunks
 *   FLOW#<flow> / JOB#<id>                     one job; gsi1pk = FLOW#<flow>#STATUS#<status>, gsi1sk = <id>
 *   FLOW#<flow> / CKPT#<name>                  one checkpoint
 *   LEASE#<name> / LEASE                       one named lease
 *
 * A plan (TableSchema[] plus every table's ranges) can outgrow the 400 KB item limit, hence the chunks. Chunks of one
 * write share a random generation <gen> that META names, so replacing them is never seen half-done.
 *
 * Every Json value (range, cursor, position, summary) is stored as its JSON text in an S attribute: DynamoDB
 * numbers would lose big integers' exactness and maps would lose key order.
 *
 * Idempotency comes from ConditionExpressions: addJobs puts with attribute_not_exists (BatchWriteItem cannot be
 * conditional), every job transition carries `status <> done` so done is final, and leases are conditional puts.
 * Status-filtered listJobs reads the GSI, which is eventually consistent on AWS: a job that just changed status
 * may be listed under its old one for a moment. Callers use it to find work, and startJob re-checks the truth.
 */
import {
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DynamoDBClient,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { randomUUID } from 'node:crypto';
import type { FlowRecord, JobRecord, JobStatus, Json, Position } from '../../core/model.js';
import type { JobCounts, JobProgress, StateStore } from '../../core/ports/state-store.js';
import {
  s, n, json, flowPk, statusPk, chunkKey, jobKey, metaKey, leaseKey, statusValues, namesIn, conditionOf, progressValues,
  jobItem, fromJobItem, type Item,
} from './state-items.js';

export { STATE_TABLE_SCHEMA, createStateTable } from './state-table.js';

/** Items are limited to 400 KB; chunks stay well below it with room for keys. */
const CHUNK_BYTES = 350_000;
/** Parallel single-item writes in addJobs: enough to be quick, few enough not to trip throttling at once. */
const PUT_CONCURRENCY = 16;

/** What the plan chunks hold. Ranges never change after createFlow; tables may (updateFlow). */
type Plan = Pick<FlowRecord, 'tables' | 'ranges'>;

export class DynamoDbStateStore implements StateStore {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;

  constructor(opts: { client: DynamoDBClient; tableName: string }) {
    this.client = opts.client;
    this.tableName = opts.tableName;
  }

  async createFlow(flow: FlowRecord): Promise<FlowRecord> {
    // The common case is a resume: the flow exists and nothing needs writing.
    const existing = await this.getFlow(flow.id);
    if (existing) return existing;
    // Chunks go under a fresh generation first and META names it last, so a reader never sees META pointing at
    // missing chunks, and a writer that loses the race below cannot clobber the winner's chunks.
    const gen = randomUUID();
    const chunks = await this.putPlanChunks(flow.id, gen, { tables: flow.tables, ranges: flow.ranges });
    const item: Item = {
      ...metaKey(flow.id),
      id: s(flow.id),
      phase: s(flow.phase),
      summary: json(flow.summary),
      createdAt: n(flow.createdAt),
      updatedAt: n(flow.updatedAt),
      planGen: s(gen),
      planChunks: n(chunks),
    };
    if (flow.error !== undefined) item.error = s(flow.error);
    if (!(await this.put(item, 'attribute_not_exists(pk)'))) await this.deletePlanChunks(flow.id, gen, chunks);
    return (await this.getFlow(flow.id))!;
  }

  async getFlow(id: string): Promise<FlowRecord | undefined> {
    // One query returns META and every chunk generation (META sorts first). A concurrent updateFlow may delete the
    // generation META named between reading META and reading its chunks; the chunk count shows it and we read again.
    for (let attempt = 0; ; attempt++) {
      const items = await this.queryAll({
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :meta)',
        ExpressionAttributeValues: { ':pk': s(flowPk(id)), ':meta': s('META') },
      });
      const meta = items.find((i) => i.sk?.S === 'META');
      if (!meta) return undefined;
      const prefix = `META#PLAN#${meta.planGen!.S}#`;
      const chunks = items.filter((i) => i.sk!.S!.startsWith(prefix)).map((i) => i.data!.B!);
      if (chunks.length !== Number(meta.planChunks!.N)) {
        if (attempt < 5) continue;
        throw new Error(`getFlow ${id}: plan chunks keep changing`);
      }
      const plan = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Plan;
      const flow: FlowRecord = {
        id: meta.id!.S!,
        phase: meta.phase!.S! as FlowRecord['phase'],
        summary: JSON.parse(meta.summary!.S!) as Json,
        tables: plan.tables,
        ranges: plan.ranges,
        createdAt: Number(meta.createdAt!.N),
        updatedAt: Number(meta.updatedAt!.N),
      };
      if (meta.error?.S !== undefined) flow.error = meta.error.S;
      return flow;
    }
  }

  async updateFlow(id: string, patch: Partial<Pick<FlowRecord, 'phase' | 'error' | 'tables'>>): Promise<void> {
    const sets = ['updatedAt = :now'];
    const values: Item = { ':now': n(Date.now()) };
    let remove = '';
    if (patch.phase !== undefined) (sets.push('phase = :phase'), (values[':phase'] = s(patch.phase)));
    // A present-but-undefined `error` clears it (a resumed flow should stop showing the old failure).
    if ('error' in patch) {
      if (patch.error === undefined) remove = ' REMOVE #error';
      else (sets.push('#error = :error'), (values[':error'] = s(patch.error)));
    }
    let gen: string | undefined;
    let chunks = 0;
    if (patch.tables !== undefined) {
      // The chunks hold the ranges too; they are immutable, so copying the stored ones cannot lose an update.
      const current = await this.getFlow(id);
      if (!current) throw new Error(`updateFlow: no flow ${id}`);
      gen = randomUUID();
      chunks = await this.putPlanChunks(id, gen, { tables: patch.tables, ranges: current.ranges });
      sets.push('planGen = :gen', 'planChunks = :chunks');
      values[':gen'] = s(gen);
      values[':chunks'] = n(chunks);
    }
    const update = `SET ${sets.join(', ')}${remove}`;
    const old = await this.update(metaKey(id), update, 'attribute_exists(pk)', values, 'UPDATED_OLD');
    if (!old) {
      if (gen) await this.deletePlanChunks(id, gen, chunks);
      throw new Error(`updateFlow: no flow ${id}`);
    }
    // The replaced generation is garbage now; a crash before this leaves orphans that readers ignore.
    if (gen && old.planGen?.S) await this.deletePlanChunks(id, old.planGen.S, Number(old.planChunks?.N ?? 0));
  }

  async addJobs(jobs: JobRecord[]): Promise<void> {
    // A few puts in flight at a time; a refused condition means the job exists and is left as it is.
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) await this.put(jobItem(jobs[next++]!), 'attribute_not_exists(pk)');
    };
    await Promise.all(Array.from({ length: Math.min(PUT_CONCURRENCY, jobs.length) }, worker));
  }

  async getJob(flow: string, id: string): Promise<JobRecord | undefined> {
    const item = await this.get(jobKey(flow, id));
    return item && fromJobItem(item);
  }

  async listJobs(flow: string, status?: JobStatus): Promise<JobRecord[]> {
    // Both paths come back ordered by job id (the sort key), like the SQLite adapter. GSIs cannot read consistently.
    const items =
      status === undefined
        ? await this.queryAll({
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :job)',
            ExpressionAttributeValues: { ':pk': s(flowPk(flow)), ':job': s('JOB#') },
          })
        : await this.queryAll(
            {
              IndexName: 'gsi1',
              KeyConditionExpression: 'gsi1pk = :g',
              ExpressionAttributeValues: { ':g': s(statusPk(flow, status)) },
            },
            false,
          );
    return items.map(fromJobItem);
  }

  async countJobs(flow: string): Promise<Record<string, JobCounts>> {
    const out: Record<string, JobCounts> = {};
    for (const job of await this.listJobs(flow)) {
      const zero = { total: 0, pending: 0, running: 0, done: 0, failed: 0, rows: 0, bytes: 0, estimatedRows: 0 };
      const c = (out[job.table] ??= zero);
      c.total++;
      c[job.status]++;
      c.rows += job.rows;
      c.bytes += job.bytes;
      c.estimatedRows += job.estimatedRows;
    }
    return out;
  }

  async startJob(flow: string, id: string, owner: string, leaseUntil: number): Promise<boolean> {
    // Only `done` refuses: the port makes done final and nothing else (a failed job may be started by a resume).
    return this.updateJob(
      flow,
      id,
      '#status = :st, gsi1pk = :g, leaseOwner = :owner, leaseUntil = :until, attempts = attempts + :one',
      { ...statusValues(flow, 'running'), ':owner': s(owner), ':until': n(leaseUntil), ':one': n(1) },
    );
  }

  async recordProgress(flow: string, id: string, progress: JobProgress, leaseUntil: number): Promise<void> {
    // A late call from a worker that lost its job must not rewrite a done job's final numbers.
    await this.updateJob(flow, id, '#cursor = :cursor, #rows = :rows, #bytes = :bytes, leaseUntil = :until', {
      ...progressValues(progress),
      ':until': n(leaseUntil),
    });
  }

  async finishJob(flow: string, id: string, progress: JobProgress): Promise<void> {
    await this.updateJob(
      flow,
      id,
      '#status = :st, gsi1pk = :g, #cursor = :cursor, #rows = :rows, #bytes = :bytes',
      { ...progressValues(progress), ...statusValues(flow, 'done') },
      'leaseOwner, leaseUntil, #error',
    );
  }

  async failJob(flow: string, id: string, error: string, final: boolean): Promise<void> {
    // The cursor stays, so the retry resumes where the failed attempt last committed.
    const values = { ...statusValues(flow, final ? 'failed' : 'pending'), ':error': s(error) };
    await this.updateJob(flow, id, '#status = :st, gsi1pk = :g, #error = :error', values, 'leaseOwner, leaseUntil');
  }

  async getCheckpoint(flow: string, name: string): Promise<Position | undefined> {
    const item = await this.get({ pk: s(flowPk(flow)), sk: s(`CKPT#${name}`) });
    return item && (JSON.parse(item.position!.S!) as Json);
  }

  async putCheckpoint(flow: string, name: string, position: Position): Promise<void> {
    await this.put({ pk: s(flowPk(flow)), sk: s(`CKPT#${name}`), position: json(position) });
  }

  async acquireLease(name: string, owner: string, until: number): Promise<boolean> {
    // Expiry is judged by this caller's clock; lease holders renew well before `until`, so modest skew is harmless.
    return this.put(
      { ...leaseKey(name), owner: s(owner), until: n(until) },
      'attribute_not_exists(pk) OR #owner = :owner OR #until <= :now',
      { ':owner': s(owner), ':now': n(Date.now()) },
    );
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.del(leaseKey(name), '#owner = :owner', { ':owner': s(owner) });
  }

  /** The client belongs to the caller (it may serve other stores), so closing the store leaves it open. */
  async close(): Promise<void> {}

  /** SET (and REMOVE) on an existing job that is not done; false when the condition refused it. */
  private async updateJob(flow: string, id: string, set: string, values: Item, remove = ''): Promise<boolean> {
    // attribute_exists: UpdateItem would otherwise create a half-empty job for an unknown id.
    const res = await this.update(
      jobKey(flow, id),
      `SET ${set}, #updatedAt = :now${remove && ` REMOVE ${remove}`}`,
      'attribute_exists(pk) AND #status <> :doneStatus',
      { ...values, ':doneStatus': s('done'), ':now': n(Date.now()) },
    );
    return res !== undefined;
  }

  /** Resolves false when a ConditionExpression refused the write; other errors propagate. */
  private async conditional(write: Promise<unknown>): Promise<boolean> {
    try {
      await write;
      return true;
    } catch (err) {
      if ((err as Error | undefined)?.name === 'ConditionalCheckFailedException') return false;
      throw err;
    }
  }

  private put(item: Item, condition?: string, values?: Item): Promise<boolean> {
    const cmd = new PutItemCommand({ TableName: this.tableName, Item: item, ...conditionOf(condition, values) });
    return this.conditional(this.client.send(cmd));
  }

  private del(key: Item, condition?: string, values?: Item): Promise<boolean> {
    const cmd = new DeleteItemCommand({ TableName: this.tableName, Key: key, ...conditionOf(condition, values) });
    return this.conditional(this.client.send(cmd));
  }

  /** The attributes ReturnValues asks for ({} for NONE), or undefined when the condition refused the update. */
  private async update(
    key: Item,
    update: string,
    condition: string,
    values: Item,
    returnValues: 'NONE' | 'UPDATED_OLD' = 'NONE',
  ): Promise<Item | undefined> {
    const cmd = new UpdateItemCommand({
      TableName: this.tableName,
      Key: key,
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: namesIn(update, condition),
      ExpressionAttributeValues: values,
      ReturnValues: returnValues,
    });
    let attributes: Item = {};
    const ok = await this.conditional(this.client.send(cmd).then((res) => (attributes = res.Attributes ?? {})));
    return ok ? attributes : undefined;
  }

  private async get(key: Item): Promise<Item | undefined> {
    return (await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: key, ConsistentRead: true })))
      .Item;
  }

  private async queryAll(input: Omit<QueryCommandInput, 'TableName'>, consistent = true): Promise<Item[]> {
    // GSIs do not support consistent reads; the base table always gets them.
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const res = await this.client.send(
        new QueryCommand({ ...input, TableName: this.tableName, ConsistentRead: consistent, ExclusiveStartKey: start }),
      );
      items.push(...(res.Items ?? []));
      start = res.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Binary chunks, so a split never lands inside a multi-byte UTF-8 character. Returns the chunk count. */
  private async putPlanChunks(flow: string, gen: string, plan: Plan): Promise<number> {
    const bytes = Buffer.from(JSON.stringify(plan), 'utf8');
    const count = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
    const data = (i: number): AttributeValue => ({ B: bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES) });
    await Promise.all(Array.from({ length: count }, (_, i) => this.put({ ...chunkKey(flow, gen, i), data: data(i) })));
    return count;
  }

  private async deletePlanChunks(flow: string, gen: string, count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, i) => this.del(chunkKey(flow, gen, i))));
  }
}
