/**
 * The Lambdas: seven workflow steps that Step Functions invokes (workflow.ts; Finalize is an ECS task of the
 * streamer image, see there), CopyRange, which SQS feeds, and SuperviseStreamer, which EventBridge invokes when a
 * streamer task stops (supervisor.ts).
 *
 * Each links only what its handler reads through `Resource` (functions/lib/context.ts). A link is also an IAM grant,
 * and SST grants whole services (`dynamodb:*`, `sqs:*`, `ecs:*`), so each function's link policy is narrowed to the
 * actions it calls (`scoped` below). The database URLs are not linked: the functions read the Secrets Manager
 * copies (secrets.ts) at run time, by ARN, with GetSecretValue on exactly those two.
 *
 *   function           FerryState   RangeJobs  URLs  Streamer
 *   Validate           read, lease             x               + states:DescribeExecution (lease holder still running?)
 *   Plan               read/write              x
 *   Enqueue            read         send
 *   Progress           read
 *   StartStreamer      read                          RunTask
 *   Status             read
 *   RecordFailure      read/write
 *   CopyRange          read/write   send             (+ what SST's subscription grants: receive, delete, visibility)
 *   SuperviseStreamer  read                          RunTask
 */
import { rangeJobs } from './queue';
import { managedSourceUrl, managedTargetUrl } from './secrets';
import { settings } from './settings';
import { stateTable } from './state';
import { streamer } from './streamer';
import { functionVpc } from './vpc';

const minutes = (n: number) => `${n} minutes` as const;

const DYNAMO_READ = ['dynamodb:GetItem', 'dynamodb:Query'];
const DYNAMO_WRITE = [...DYNAMO_READ, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
const SQS_SEND = ['sqs:SendMessage', 'sqs:SendMessageBatch', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'];

interface Access {
  dynamo: string[];
  sqs?: string[];
  /** Reads the database URLs from Secrets Manager. */
  databases?: boolean;
}

/** What every Ferry Lambda shares: Node 22, inside the VPC (the databases may be reachable only there). */
const common = {
  runtime: 'nodejs22.x',
  architecture: settings.functions.architecture,
  vpc: functionVpc,
  timeout: minutes(settings.functions.timeoutMinutes),
  memory: settings.functions.memory,
  logging: { retention: settings.functions.logRetention },
} satisfies Partial<sst.aws.FunctionArgs>;

/** The Secrets Manager ARNs as environment and the one permission to read them. */
function databaseAccess() {
  return {
    environment: { FERRY_SOURCE_SECRET_ARN: managedSourceUrl.arn, FERRY_TARGET_SECRET_ARN: managedTargetUrl.arn },
    permissions: [{ actions: ['secretsmanager:GetSecretValue'], resources: [managedSourceUrl.arn, managedTargetUrl.arn] }],
  };
}

/** Function arguments with the link policy narrowed to `access` (and the database secrets when it needs them). */
type Extra = Omit<Partial<sst.aws.FunctionArgs>, 'environment' | 'permissions'> & {
  environment?: Record<string, $util.Input<string>>;
  permissions?: { actions: string[]; resources: $util.Input<string>[] }[];
};

function scoped(access: Access, args: Extra): Partial<sst.aws.FunctionArgs> {
  const db = access.databases ? databaseAccess() : { environment: {}, permissions: [] };
  return {
    ...args,
    environment: { ...db.environment, ...(args.environment ?? {}) },
    permissions: [...db.permissions, ...(args.permissions ?? [])],
    transform: {
      ...args.transform,
      role: (role) => {
        role.inlinePolicies = $util
          .output(role.inlinePolicies)
          .apply((policies) =>
            (policies ?? []).map((p) => ({
              ...p,
              policy: p.policy && $util.output(p.policy).apply((doc) =>
                narrow(doc, { 'dynamodb:*': access.dynamo, 'sqs:*': access.sqs ?? [], 'ecs:*': ['ecs:RunTask'] }),
              ),
            })),
          );
      },
    },
  };
}

function step(name: string, file: string, link: unknown[], access: Access, extra: Extra = {}) {
  return new sst.aws.Function(name, { ...common, handler: `functions/${file}.handler`, link, ...scoped(access, extra) });
}

/** The name the state machine gets (workflow.ts): Validate looks up its executions before the machine exists. */
export const STATE_MACHINE_NAME = `${$app.name}-${$app.stage}-migration`;
const executionsArn = $interpolate`arn:aws:states:${aws.getRegionOutput().region}:${aws.getCallerIdentityOutput().accountId}:execution:${STATE_MACHINE_NAME}:*`;

export const validate = step('Validate', 'validate', [stateTable], { dynamo: DYNAMO_WRITE, databases: true }, {
  description: 'Ferry: validate the config, take the flow lease, check limits and connections, preflight both sides',
  environment: {
    FERRY_COPY_CONCURRENCY: String(settings.copy.maxConcurrency),
    FERRY_MAX_RECEIVE_COUNT: String(settings.queue.maxReceiveCount),
    FERRY_MAX_POLLS: String(settings.workflow.maxPolls),
  },
  permissions: [{ actions: ['states:DescribeExecution'], resources: [executionsArn] }],
});

export const plan = step('Plan', 'plan', [stateTable], { dynamo: DYNAMO_WRITE, databases: true }, {
  description: 'Ferry: create slot and publication, store the plan and config, create target tables, add range jobs',
  timeout: minutes(settings.functions.planTimeoutMinutes),
  memory: settings.functions.planMemory,
});

export const enqueue = step('Enqueue', 'enqueue', [stateTable, rangeJobs], { dynamo: DYNAMO_READ, sqs: SQS_SEND }, {
  description: 'Ferry: send every range job not done to the RangeJobs queue',
});

export const progress = step('Progress', 'progress', [stateTable], { dynamo: DYNAMO_READ }, {
  description: 'Ferry: count range jobs by status',
});

export const startStreamer = step('StartStreamer', 'start-streamer', [stateTable, streamer], { dynamo: DYNAMO_READ }, {
  description: 'Ferry: start the CDC streamer task (ECS RunTask with only the flow id)',
});

export const status = step('Status', 'status', [stateTable], { dynamo: DYNAMO_READ }, {
  description: 'Ferry: the flow report (phase, rows per table, streaming checkpoint and lag)',
});

export const recordFailure = step('RecordFailure', 'record-failure', [stateTable], { dynamo: DYNAMO_WRITE }, {
  description: 'Ferry: record a failed execution on its flow (phase failed, with the cause)',
});

export const superviseStreamer = step('SuperviseStreamer', 'supervise-streamer', [stateTable, streamer], { dynamo: DYNAMO_READ }, {
  description: 'Ferry: relaunch a streamer task that stopped while its flow still streams',
});

/**
 * CopyRange: the SQS subscriber. Partial batch responses, so one failed range does not send its batch-mates back.
 * maximumConcurrency on the event source mapping (rather than reserved concurrency) caps parallel copies without
 * Lambda throttling, which would push messages back to the queue and count as deliveries.
 */
export const copyRange = rangeJobs.subscribe(
  {
    ...common,
    handler: 'functions/copy-range.handler',
    description: 'Ferry: copy one key range (SQS subscriber, partial batch failures)',
    timeout: minutes(settings.copy.timeoutMinutes),
    memory: settings.copy.memory,
    link: [stateTable, rangeJobs],
    ...scoped(
      { dynamo: DYNAMO_WRITE, sqs: [...SQS_SEND, 'sqs:ReceiveMessage', 'sqs:DeleteMessage'], databases: true },
      { environment: { FERRY_COPY_BATCH_BYTES: String(settings.copy.batchBytes), FERRY_COPY_CONCURRENCY: String(settings.copy.maxConcurrency) } },
    ),
  },
  {
    batch: { size: settings.copy.batchSize, partialResponses: true },
    transform: {
      eventSourceMapping: { scalingConfig: { maximumConcurrency: settings.copy.maxConcurrency } },
    },
  },
);

/** The Step Functions placeholders (infra/workflow.asl.json) and the function each one names. */
export const workflowFunctions = {
  ValidateFunctionArn: validate,
  PlanFunctionArn: plan,
  EnqueueFunctionArn: enqueue,
  ProgressFunctionArn: progress,
  StartStreamerFunctionArn: startStreamer,
  StatusFunctionArn: status,
  RecordFailureFunctionArn: recordFailure,
};

/**
 * Rewrites service wildcards (`dynamodb:*` …) to the listed actions in an IAM policy document, leaving resources
 * and other statements as they are. An empty list drops the statement's wildcard entirely.
 */
export function narrow(policy: string, replace: Record<string, string[]>): string {
  const doc = JSON.parse(policy) as { Statement?: { Action?: string | string[] }[] };
  for (const statement of doc.Statement ?? []) {
    const actions = typeof statement.Action === 'string' ? [statement.Action] : statement.Action;
    if (!actions) continue;
    const out = actions.flatMap((a) => replace[a] ?? [a]);
    statement.Action = [...new Set(out)];
  }
  doc.Statement = (doc.Statement ?? []).filter((s) => !Array.isArray(s.Action) || s.Action.length > 0);
  return JSON.stringify(doc);
}
