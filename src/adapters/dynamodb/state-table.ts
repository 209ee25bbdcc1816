/** The state table's schema and its creation (tests and `ferry aws` create it; on AWS, infra/state.ts declares it). */
import { CreateTableCommand, waitUntilTableExists, type DynamoDBClient, type KeySchemaElement } from '@aws-sdk/client-dynamodb';

/**
 * The table's key schema, shaped like the arguments of SST's `sst.aws.Dynamo` (projection: all), so infra can
 * declare the very table `createStateTable` makes for tests.
 */
export const STATE_TABLE_SCHEMA = {
  fields: { pk: 'string', sk: 'string', gsi1pk: 'string', gsi1sk: 'string' },
  primaryIndex: { hashKey: 'pk', rangeKey: 'sk' },
  globalIndexes: { gsi1: { hashKey: 'gsi1pk', rangeKey: 'gsi1sk' } },
} as const;

const keySchema = (k: { hashKey: string; rangeKey: string }): KeySchemaElement[] => [
  { AttributeName: k.hashKey, KeyType: 'HASH' },
  { AttributeName: k.rangeKey, KeyType: 'RANGE' },
];

/** Create the state table (on-demand billing) if it does not exist, and wait until it is active. */
export async function createStateTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const { fields, primaryIndex, globalIndexes } = STATE_TABLE_SCHEMA;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: Object.keys(fields).map((name) => ({ AttributeName: name, AttributeType: 'S' })),
        KeySchema: keySchema(primaryIndex),
        GlobalSecondaryIndexes: Object.entries(globalIndexes).map(([name, idx]) => ({
          IndexName: name,
          KeySchema: keySchema(idx),
          Projection: { ProjectionType: 'ALL' },
        })),
      }),
    );
  } catch (err) {
    if ((err as Error).name !== 'ResourceInUseException') throw err;
  }
  await waitUntilTableExists({ client, maxWaitTime: 120 }, { TableName: tableName });
}
