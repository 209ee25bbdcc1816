/**
 * The only place the Lambdas read their configuration. Each function is linked to just what it uses (scoped IAM),
 * so a link that is absent simply leaves its setting unset.
 *
 * The database URLs come from AWS Secrets Manager at run time (FERRY_SOURCE_SECRET_ARN / FERRY_TARGET_SECRET_ARN,
 * set by infra/functions.ts), read once per container: they are not in the bundle or the function's configuration,
 * and rotating them needs no deploy (only new containers). Without those variables (the tests, which have no Secrets
 * Manager) the linked SST secrets SourceUrl/TargetUrl are used if present.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DescribeExecutionCommand, ExecutionDoesNotExist, SFNClient } from '@aws-sdk/client-sfn';
import { Resource } from 'sst';
import { EcsStreamerLauncher } from '../../src/adapters/ecs/ecs-launcher.js';
import type { DeploymentLimits } from '../../src/runtime/aws/activities.js';
import type { ExecutionStatus } from '../../src/runtime/aws/workflow-lease.js';
import { createAwsContext, type AwsContext } from '../../src/runtime/aws/context.js';

function linked<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

async function secret(arnVariable: string, fallback: () => string): Promise<string | undefined> {
  const arn = process.env[arnVariable];
  if (!arn) return linked(fallback);
  const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new Error(`Secrets Manager secret ${arn} (${arnVariable}) has no string value`);
  return out.SecretString;
}

let context: Promise<AwsContext> | undefined;
let resolved: AwsContext | undefined;

/** The database URLs this container holds, for redacting errors (functions/lib/middleware.ts). */
export const secretValues = (): (string | undefined)[] => [resolved?.settings.sourceUrl, resolved?.settings.targetUrl];

export function awsContext(): Promise<AwsContext> {
  context ??= (async () => {
    const [sourceUrl, targetUrl] = await Promise.all([
      secret('FERRY_SOURCE_SECRET_ARN', () => (Resource as unknown as { SourceUrl: { value: string } }).SourceUrl.value),
      secret('FERRY_TARGET_SECRET_ARN', () => (Resource as unknown as { TargetUrl: { value: string } }).TargetUrl.value),
    ]);
    resolved = createAwsContext({
      stateTable: Resource.FerryState.name,
      queueUrl: linked(() => Resource.RangeJobs.url),
      sourceUrl,
      targetUrl,
    });
    return resolved;
  })().catch((err: unknown) => {
    context = undefined; // a failed read (throttled, network) is retried by the next invocation
    throw err;
  });
  return context;
}

function int(name: string, fallback: number): number {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** The deployment's limits, passed by infra/functions.ts as environment of Validate (defaults: settings.ts's). */
export function deploymentLimits(): DeploymentLimits {
  return {
    copyConcurrency: int('FERRY_COPY_CONCURRENCY', 8),
    maxReceiveCount: int('FERRY_MAX_RECEIVE_COUNT', 10),
    maxPolls: int('FERRY_MAX_POLLS', 500),
  };
}

/** Step Functions' view of an execution, for the workflow lease (is its holder still running?). */
export const sfnExecutions: ExecutionStatus = {
  async status(executionArn) {
    try {
      const out = await new SFNClient({}).send(new DescribeExecutionCommand({ executionArn }));
      return out.status;
    } catch (err) {
      if (err instanceof ExecutionDoesNotExist) return undefined;
      throw err;
    }
  },
};

/** The ECS RunTask launcher for the linked streamer task. */
export function streamerLauncher(): EcsStreamerLauncher {
  const task = Resource.Streamer;
  return new EcsStreamerLauncher({ ...task, container: task.containers[0] ?? 'streamer' });
}
