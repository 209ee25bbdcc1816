import { DeleteTableCommand, DescribeTableCommand, GetItemCommand, QueryCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createStateTable,
  DynamoDbStateStore,
  STATE_TABLE_SCHEMA,
} from '../src/adapters/dynamodb/dynamodb-state-store.js';
import type { FlowRecord, PlannedRange, TableSchema } from '../src/core/model.js';
import { flowRecord, jobRecord, stateStoreContract, table } from './contracts/state-store.contract.js';
import { startDynamoDbLocal, type DynamoDbLocal } from './support/dynamodb-local.js';

// One DynamoDB Local per file (about a second to start), one fresh table per test.
let local: DynamoDbLocal;
let tables = 0;
beforeAll(async () => {
  local = await startDynamoDbLocal();
});
afterAll(async () => {
  await local?.stop();
});

async function freshStore(): Promise<{ store: DynamoDbStateStore; tableName: string; cleanup(): Promise<void> }> {
  const tableName = `ferry-state-${++tables}`;
  await createStateTable(local.client, tableName);
  const store = new DynamoDbStateStore({ client: local.client, tableName });
  return {
    store,
    tableName,
    async cleanup() {
      await store.close();
      await local.client.send(new DeleteTableCommand({ TableName: tableName }));
    },
  };
}

stateStoreContract('dynamodb', freshStore);

/** Tables whose JSON is several chunks long, with multi-byte characters so chunk borders cut through them. */
function bigTables(count: number, tag: string): TableSchema[] {
  return Array.from({ length: count }, (_, i) =>
    table(`t${i}_${tag}`, { note: `Grüße 🚀 ${tag} `.repeat(60), i: String(i), big: '9223372036854775807' }),
  );
}

/** Many ranges for one table: the other way a plan outgrows an item. */
function manyRanges(count: number): PlannedRange[] {
  return Array.from({ length: count }, (_, i) => ({
    range: { lower: [String(i * 1000)], upper: [String((i + 1) * 1000)], big: '9223372036854775807' },
    label: `id in [${i * 1000}, ${(i + 1) * 1000}) ü`,
    estimatedRows: 1000,
  }));
}

const planBytes = (f: Pick<FlowRecord, 'tables' | 'ranges'>) =>
  Buffer.byteLength(JSON.stringify({ tables: f.tables, ranges: f.ranges }));

describe('DynamoDbStateStore specifics', () => {
  let ctx: Awaited<ReturnType<typeof freshStore>>;
  beforeEach(async () => {
    ctx = await freshStore();
    return () => ctx.cleanup();
  });

  /** How many plan chunk items the flow has, whatever their generation. */
  async function chunkItems(flow: string): Promise<number> {
    let count = 0;
    let start: Record<string, never> | undefined;
    do {
      const res = await local.client.send(
        new QueryCommand({
          TableName: ctx.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :p)',
          ExpressionAttributeValues: { ':pk': { S: `FLOW#${flow}` }, ':p': { S: 'META#PLAN#' } },
          Select: 'COUNT',
          ExclusiveStartKey: start,
        }),
      );
      count += res.Count ?? 0;
      start = res.LastEvaluatedKey as typeof start;
    } while (start);
    return count;
  }

  it('a flow with a tables array larger than an item round-trips, and replaced chunks are deleted', async () => {
    const { store } = ctx;
    const flow = flowRecord('big', { tables: bigTables(700, 'a'), ranges: { 'public.t0_a': manyRanges(5_000) } });
    expect(planBytes(flow)).toBeGreaterThan(1_200_000); // over the 400 KB item limit and the 1 MB query page
    expect(await store.createFlow(flow)).toEqual(flow);
    expect(await store.getFlow('big')).toEqual(flow);
    const first = await chunkItems('big');
    expect(first).toBeGreaterThanOrEqual(4);

    // Existing wins without writing anything.
    expect(await store.createFlow(flowRecord('big', { tables: bigTables(800, 'b') }))).toEqual(flow);
    expect(await chunkItems('big')).toBe(first);

    const replacement = bigTables(900, 'c');
    await store.updateFlow('big', { tables: replacement, phase: 'snapshot' });
    const got = await store.getFlow('big');
    expect(got!.tables).toEqual(replacement);
    expect(got!.phase).toBe('snapshot');
    expect(got!.ranges).toEqual(flow.ranges);
    expect(await chunkItems('big')).toBe(Math.ceil(planBytes({ tables: replacement, ranges: flow.ranges }) / 350_000));

    await store.updateFlow('big', { tables: [] });
    expect((await store.getFlow('big'))!.tables).toEqual([]);
    expect(await chunkItems('big')).toBe(Math.ceil(planBytes({ tables: [], ranges: flow.ranges }) / 350_000));
  });

  it('concurrent createFlow of large plans: one wins, and the losers leave no chunks behind', async () => {
    const flows = ['a', 'b', 'c'].map((tag) => flowRecord('race', { tables: bigTables(400, tag) }));
    const results = await Promise.all(flows.map((f) => ctx.store.createFlow(f)));
    const winner = results[0]!;
    expect(flows).toContainEqual(winner);
    for (const r of results) expect(r).toEqual(winner);
    expect(await ctx.store.getFlow('race')).toEqual(winner);
    expect(await chunkItems('race')).toBe(Math.ceil(planBytes(winner) / 350_000));
  });

  it('updateFlow of an unknown flow leaves no table chunks behind', async () => {
    await expect(ctx.store.updateFlow('ghost', { tables: bigTables(10, 'x') })).rejects.toThrow(/no flow/);
    expect(await chunkItems('ghost')).toBe(0);
  });

  it('job items keep the status index key in step with their status', async () => {
    const { store, tableName } = ctx;
    const gsi = async () =>
      (
        await local.client.send(
          new GetItemCommand({ TableName: tableName, Key: { pk: { S: 'FLOW#f' }, sk: { S: 'JOB#j' } } }),
        )
      ).Item!.gsi1pk!.S;
    await store.addJobs([jobRecord('f', 'j')]);
    expect(await gsi()).toBe('FLOW#f#STATUS#pending');
    await store.startJob('f', 'j', 'w', Date.now() + 60_000);
    expect(await gsi()).toBe('FLOW#f#STATUS#running');
    await store.failJob('f', 'j', 'x', false);
    expect(await gsi()).toBe('FLOW#f#STATUS#pending');
    await store.finishJob('f', 'j', { cursor: null, rows: 1, bytes: 1 });
    expect(await gsi()).toBe('FLOW#f#STATUS#done');
  });

  it('createStateTable is idempotent and declares the keys of STATE_TABLE_SCHEMA', async () => {
    await createStateTable(local.client, ctx.tableName);
    const { Table } = await local.client.send(new DescribeTableCommand({ TableName: ctx.tableName }));
    expect(Table!.KeySchema).toEqual([
      { AttributeName: STATE_TABLE_SCHEMA.primaryIndex.hashKey, KeyType: 'HASH' },
      { AttributeName: STATE_TABLE_SCHEMA.primaryIndex.rangeKey, KeyType: 'RANGE' },
    ]);
    const gsi = Table!.GlobalSecondaryIndexes!.find((i) => i.IndexName === 'gsi1');
    expect(gsi!.KeySchema).toEqual([
      { AttributeName: STATE_TABLE_SCHEMA.globalIndexes.gsi1.hashKey, KeyType: 'HASH' },
      { AttributeName: STATE_TABLE_SCHEMA.globalIndexes.gsi1.rangeKey, KeyType: 'RANGE' },
    ]);
    expect(gsi!.Projection!.ProjectionType).toBe('ALL');
  });
});
