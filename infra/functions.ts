/**
 * The Lambdas: seven workflow steps that Step Functions invokes (workflow.ts), and CopyRange, which SQS feeds.
 *
 * Each links only what its handler reads through `Resource` (functions/lib/context.ts), and a link is also the IAM
 * grant, so a function's role reaches only these resources (besides its logs and the VPC's network interfaces):
 *
 *   function        FerryState  RangeJobs  SourceUrl/TargetUrl  Streamer
 *   Validate            x                       x                          getFlow (resume?), preflight both sides
 *   Plan                x                       x                          slot, plan, target tables, jobs
 *   Enqueue             x           x                                      pending jobs -> SQS
 *   Progress            x                                                  job counts
 *   Finalize            x                       x                          indexes, constraints, sequences
 *   StartStreamer       x                                          x       ECS RunTask (the context needs the table name)
 *   Status              x                                                  the report
 *   CopyRange           x           x           x                          copy; re-enqueue continuations
 */
import { rangeJobs } from './queue';
import { sourceUrl, targetUrl } from './secrets';
import { settings } from './settings';
import { stateTable } from './state';
import { streamer } from './streamer';
import { functionVpc } from './vpc';

const minutes = (n: number) => `${n} minutes` as const;

/** What every Ferry Lambda shares: Node 22, inside the VPC (the databases may be reachable only there). */
const common = {
  runtime: 'nodejs22.x',
  architecture: settings.functions.architecture,
  vpc: functionVpc,
  timeout: minutes(settings.functions.timeoutMinutes),
  memory: settings.functions.memory,
  logging: { retention: settings.functions.logRetention },
} satisfies Partial<sst.aws.FunctionArgs>;

function step(name: string, file: string, link: unknown[], extra: Partial<sst.aws.FunctionArgs> = {}) {
  return new sst.aws.Function(name, { ...common, handler: `functions/${file}.handler`, link, ...extra });
}

export const validate = step('Validate', 'validate', [stateTable, sourceUrl, targetUrl], {
  description: 'Ferry: validate the config and preflight source and target (writes nothing)',
});

export const plan = step('Plan', 'plan', [stateTable, sourceUrl, targetUrl], {
  description: 'Ferry: create slot and publication, store the plan, create target tables, add range jobs',
  timeout: minutes(settings.functions.planTimeoutMinutes),
  memory: settings.functions.planMemory,
});

export const enqueue = step('Enqueue', 'enqueue', [stateTable, rangeJobs], {
  description: 'Ferry: send every range job not done to the RangeJobs queue',
});

export const progress = step('Progress', 'progress', [stateTable], {
  description: 'Ferry: count range jobs by status',
});

export const finalize = step('Finalize', 'finalize', [stateTable, sourceUrl, targetUrl], {
  description: 'Ferry: secondary indexes, constraints, foreign keys and sequences on the target',
  timeout: minutes(settings.functions.finalizeTimeoutMinutes),
});

export const startStreamer = step('StartStreamer', 'start-streamer', [stateTable, streamer], {
  description: 'Ferry: start the CDC streamer task (ECS RunTask)',
  transform: {
    // Linking the Task grants ecs:* on its task definition and on the cluster's tasks (so that SST's SDK can also
    // describe and stop them); this function only starts one. iam:PassRole stays as SST scopes it: the task's own
    // execution and task roles.
    role: (args) => {
      args.inlinePolicies = $util
        .output(args.inlinePolicies)
        .apply((policies) =>
          (policies ?? []).map((p) => ({ ...p, policy: p.policy && $util.output(p.policy).apply(onlyRunTask) })),
        );
    },
  },
});

export const status = step('Status', 'status', [stateTable], {
  description: 'Ferry: the flow report (phase, rows per table, streaming checkpoint and lag)',
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
    link: [stateTable, rangeJobs, sourceUrl, targetUrl],
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
  FinalizeFunctionArn: finalize,
  StartStreamerFunctionArn: startStreamer,
  StatusFunctionArn: status,
};

/** Rewrites `ecs:*` to `ecs:RunTask` in an IAM policy document, leaving its resources and other statements as they are. */
function onlyRunTask(policy: string): string {
  const doc = JSON.parse(policy) as { Statement?: { Action?: string | string[] }[] };
  for (const statement of doc.Statement ?? []) {
    const actions = typeof statement.Action === 'string' ? [statement.Action] : statement.Action;
    if (actions?.includes('ecs:*')) statement.Action = actions.map((a) => (a === 'ecs:*' ? 'ecs:RunTask' : a));
  }
  return JSON.stringify(doc);
}
