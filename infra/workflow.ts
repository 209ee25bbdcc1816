/**
 * The migration workflow: infra/workflow.asl.json (JSONPath ASL, the same file the tests run in
 * aws-local-stepfunctions) with its `${…}` placeholders replaced by the deployed functions' ARNs and, for the
 * Finalize step (an ECS task of the streamer image: `ecs:runTask.sync`, no 15-minute limit), the cluster, task
 * definition, container and network. A placeholder that is a whole JSON string may stand for a list (subnets).
 *
 * Deployed through the raw aws.sfn.StateMachine: SST's StepFunctions builder emits JSONata, which would be a
 * second definition to keep in step with the tested one.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_MACHINE_NAME, workflowFunctions } from './functions';
import { settings } from './settings';
import { cluster, STREAMER_CONTAINER, streamer } from './streamer';
import { clusterVpc } from './vpc';

const ASL_PATH = 'infra/workflow.asl.json';
const PLACEHOLDER = /"\$\{(\w+)\}"|\$\{(\w+)\}/g;

/** Fill the placeholders; any the file names that we do not provide, or provide and the file lacks, is a mistake. */
function render(template: string, values: Record<string, string | string[]>): string {
  const used = new Set<string>();
  const rendered = template.replace(PLACEHOLDER, (_, whole: string | undefined, inner: string | undefined) => {
    const name = (whole ?? inner)!;
    const value = values[name];
    if (value === undefined) throw new Error(`${ASL_PATH}: no value for the placeholder \${${name}}`);
    used.add(name);
    if (whole !== undefined) return JSON.stringify(value); // the whole string: a list becomes a JSON array
    if (typeof value !== 'string') throw new Error(`${ASL_PATH}: \${${name}} is a list; it must be a whole JSON string`);
    // JSON.stringify(...).slice(1, -1): the value sits inside a JSON string already.
    return JSON.stringify(value).slice(1, -1);
  });
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (unused.length) throw new Error(`${ASL_PATH}: no placeholder for ${unused.map((n) => `\${${n}}`).join(', ')}`);
  JSON.parse(rendered); // fail the deploy here rather than in the Step Functions API
  return rendered;
}

// From the app root whatever the working directory of `sst` (it may run from a subfolder).
const template = readFileSync(join($cli.paths.root, ASL_PATH), 'utf8');
const names = Object.keys(workflowFunctions) as (keyof typeof workflowFunctions)[];
const functionArns = names.map((name) => workflowFunctions[name].arn);

const clusterArn = cluster.nodes.cluster.arn;
const definition = $util
  .all([$util.all(functionArns), clusterArn, streamer.taskDefinition, $util.output(clusterVpc.containerSubnets as $util.Input<string[]>), $util.output(clusterVpc.securityGroups as $util.Input<string[]>)])
  .apply(([arns, clusterName, taskDefinition, subnets, securityGroups]) =>
    render(template, {
      ...Object.fromEntries(names.map((name, i) => [name, arns[i]!])),
      ClusterArn: clusterName,
      StreamerTaskDefinitionArn: taskDefinition,
      StreamerContainer: STREAMER_CONTAINER,
      StreamerSubnets: subnets as string[],
      StreamerSecurityGroups: securityGroups as string[],
    }),
  );

const role = new aws.iam.Role('WorkflowRole', {
  assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: 'states.amazonaws.com' }),
});

const policy = new aws.iam.RolePolicy('WorkflowRolePolicy', {
  role: role.id,
  policy: aws.iam.getPolicyDocumentOutput({
    statements: [
      {
        // Exactly the step functions; `:*` covers invocations of a qualified ARN (version or alias).
        actions: ['lambda:InvokeFunction'],
        resources: functionArns.flatMap((arn) => [arn, $interpolate`${arn}:*`]),
      },
      {
        // Finalize: run the streamer image as a task and wait for it (.sync polls the task and, should the execution
        // stop, stops it).
        actions: ['ecs:RunTask'],
        resources: [streamer.taskDefinition],
      },
      {
        actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
        resources: [$interpolate`arn:aws:ecs:${aws.getRegionOutput().region}:${aws.getCallerIdentityOutput().accountId}:task/${cluster.nodes.cluster.name}/*`],
      },
      {
        // The managed rule through which .sync learns that the task stopped (AWS's documented resource).
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [
          $interpolate`arn:aws:events:${aws.getRegionOutput().region}:${aws.getCallerIdentityOutput().accountId}:rule/StepFunctionsGetEventsForECSTaskRule`,
        ],
      },
      {
        actions: ['iam:PassRole'],
        resources: [streamer.nodes.executionRole.arn, streamer.nodes.taskRole.arn],
      },
      {
        // ContinueAsNew: the poll loop continues in a new execution of this same machine. Named, not referenced,
        // because the machine's ARN depends on this policy.
        actions: ['states:StartExecution'],
        resources: [
          $interpolate`arn:aws:states:${aws.getRegionOutput().region}:${aws.getCallerIdentityOutput().accountId}:stateMachine:${STATE_MACHINE_NAME}`,
        ],
      },
      {
        // CloudWatch Logs delivery for Step Functions is configured through these account-level APIs, which take
        // no resource ARNs (AWS documents `*` for them).
        actions: [
          'logs:CreateLogDelivery',
          'logs:GetLogDelivery',
          'logs:UpdateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:DescribeResourcePolicies',
          'logs:DescribeLogGroups',
        ],
        resources: ['*'],
      },
    ],
  }).json,
});

// The /aws/vendedlogs/ prefix keeps CloudWatch's per-account resource policy from growing with every log group.
const logGroup = new aws.cloudwatch.LogGroup('WorkflowLogs', {
  name: `/aws/vendedlogs/states/${$app.name}-${$app.stage}-migration`,
  retentionInDays: settings.workflow.logRetentionDays,
});

export const stateMachine = new aws.sfn.StateMachine(
  'Migration',
  {
    // A fixed name, so the console's state machine list shows which app and stage it belongs to.
    name: STATE_MACHINE_NAME,
    type: 'STANDARD', // runs for hours to days, and each state must run exactly once
    roleArn: role.arn,
    definition,
    loggingConfiguration: {
      level: settings.workflow.logLevel,
      includeExecutionData: settings.workflow.includeExecutionData,
      logDestination: $interpolate`${logGroup.arn}:*`,
    },
  },
  // Step Functions checks the role (logging permissions included) when the machine is created: policy first.
  { dependsOn: [policy] },
);
