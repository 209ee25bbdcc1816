/**
 * What every AWS entry point needs, built once per Lambda container or Fargate task: the DynamoDB state store,
 * the SQS queue, and the database endpoints from the deployment's secrets. Entry points read SST's `Resource` and
 * pass plain values in here; nothing below this line knows about SST.
 *
 * AWS SDK clients honour AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS, which is how tests point them at
 * DynamoDB Local and fauxqs.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDbStateStore } from '../../adapters/dynamodb/dynamodb-state-store.js';
import { SqsJobQueue } from '../../adapters/sqs/sqs-job-queue.js';
import { parseConfig, type LoadedConfig } from '../../config/load.js';
import type { StateStore } from '../../core/ports/state-store.js';

export interface AwsSettings {
  stateTable: string;
  queueUrl?: string;
  /** postgres:// URLs from the deployment's secrets; configs refer to them as ${FERRY_SOURCE_URL} / ${FERRY_TARGET_URL}. */
  sourceUrl?: string;
  targetUrl?: string;
}

export interface AwsContext {
  settings: AwsSettings;
  store: StateStore;
  queue?: SqsJobQueue;
}

export function createAwsContext(settings: AwsSettings): AwsContext {
  const dynamo = new DynamoDBClient({});
  const store = new DynamoDbStateStore({ client: dynamo, tableName: settings.stateTable });
  // With an endpoint override (an emulator), queue URLs may name hosts that do not resolve: send to the endpoint.
  const sqs = new SQSClient(process.env.AWS_ENDPOINT_URL_SQS ? { useQueueUrlAsEndpoint: false } : {});
  const queue = settings.queueUrl ? new SqsJobQueue({ client: sqs, queueUrl: settings.queueUrl }) : undefined;
  return { settings, store, queue };
}

/**
 * The execution's config with the secrets' URLs available for ${…} interpolation. When the input leaves the
 * endpoints out, they default to the deployment's secrets.
 */
export function awsConfig(raw: unknown, settings: AwsSettings): LoadedConfig {
  const input = { ...(raw as Record<string, unknown>) };
  input.source ??= { url: '${FERRY_SOURCE_URL}' };
  input.target ??= { url: '${FERRY_TARGET_URL}' };
  const env = { ...process.env };
  if (settings.sourceUrl) env.FERRY_SOURCE_URL = settings.sourceUrl;
  if (settings.targetUrl) env.FERRY_TARGET_URL = settings.targetUrl;
  return parseConfig(input, env, 'execution input');
}
