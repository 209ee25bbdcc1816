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
import { ConfigError } from '../../core/errors.js';
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

/** The only `${…}` names an execution input may use: anything else would read the function's environment. */
export const EXECUTION_PLACEHOLDERS = ['FERRY_SOURCE_URL', 'FERRY_TARGET_URL'] as const;

/** Keys the workflow itself adds to an execution's input (a continued execution); they are not config fields. */
export const WORKFLOW_KEYS = ['ferryContinuedFrom', 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID'] as const;

/**
 * The execution's config with the secrets' URLs available for ${…} interpolation. When the input leaves the
 * endpoints out, they default to the deployment's secrets.
 *
 * Interpolation sees only the two documented placeholders, never process.env: an input with
 * `${AWS_SECRET_ACCESS_KEY}` would otherwise have the Lambda's credentials copied into a field, and from there into
 * an error message in the Step Functions history.
 */
export function awsConfig(raw: unknown, settings: AwsSettings): LoadedConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError('execution input: expected a Ferry config (a JSON object)');
  }
  const input = { ...(raw as Record<string, unknown>) };
  for (const k of WORKFLOW_KEYS) delete input[k];
  input.source ??= { url: '${FERRY_SOURCE_URL}' };
  input.target ??= { url: '${FERRY_TARGET_URL}' };
  const unknown = placeholdersIn(input).filter((n) => !(EXECUTION_PLACEHOLDERS as readonly string[]).includes(n));
  if (unknown.length) {
    throw new ConfigError(
      `execution input: \${${unknown[0]}} is not allowed; on AWS only \${FERRY_SOURCE_URL} and \${FERRY_TARGET_URL} are interpolated`,
      'put the value itself in the config, or the endpoints in the deployment secrets SourceUrl/TargetUrl',
    );
  }
  const env: NodeJS.ProcessEnv = {};
  if (settings.sourceUrl) env.FERRY_SOURCE_URL = settings.sourceUrl;
  if (settings.targetUrl) env.FERRY_TARGET_URL = settings.targetUrl;
  return parseConfig(input, env, 'execution input');
}

function placeholdersIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') for (const m of value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) out.push(m[1]!);
  else if (Array.isArray(value)) for (const v of value) placeholdersIn(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) placeholdersIn(v, out);
  return out;
}
