/**
 * The CDC streamer: one Fargate task per flow, started by the StartStreamer Lambda (ECS RunTask) once the snapshot
 * is finalized, relaunched by the supervisor (supervisor.ts) whenever it stops while the flow streams, until
 * `ferry aws stop` drains it. The task definition lives here; nothing runs until then.
 */
import { managedSourceUrl, managedTargetUrl } from './secrets';
import { settings } from './settings';
import { stateTable } from './state';
import { clusterVpc } from './vpc';

export const cluster = new sst.aws.Cluster('FerryCluster', { vpc: clusterVpc });

/** The container name RunTask overrides address (src/adapters/ecs/ecs-launcher.ts reads it from the link). */
export const STREAMER_CONTAINER = 'streamer';

export const streamer = new sst.aws.Task('Streamer', {
  cluster,
  architecture: settings.streamer.architecture,
  cpu: settings.streamer.cpu,
  memory: settings.streamer.memory,
  // `sst dev` would otherwise swap in a bridge image and expect the process to run on the developer's machine.
  dev: false,
  // Private subnets (vpc.ts), so no public IP: its traffic leaves through the NAT, like the Lambdas'.
  public: false,
  // Explicit permissions instead of linking the table: the container reads FERRY_STATE_TABLE, not `Resource`, and
  // the streamer needs item reads and writes (flow, checkpoints, its lease), not dynamodb:*.
  permissions: [
    {
      actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query'],
      resources: [stateTable.arn, $interpolate`${stateTable.arn}/index/*`],
    },
  ],
  containers: [
    {
      name: STREAMER_CONTAINER,
      // Context is the repository root: the image needs package.json, src/ and containers/.
      image: { context: '.', dockerfile: 'containers/streamer/Dockerfile' },
      environment: {
        FERRY_STATE_TABLE: stateTable.name,
        FERRY_STALL_MS: String(settings.streamer.stallSeconds * 1000),
        FERRY_HEALTH_INTERVAL_MS: String(settings.streamer.healthIntervalSeconds * 1000),
      },
      // SST's `ssm` becomes the container's `secrets` (name + valueFrom ARN); see secrets.ts for why not `link`.
      ssm: {
        FERRY_SOURCE_URL: managedSourceUrl.arn,
        FERRY_TARGET_URL: managedTargetUrl.arn,
      },
      logging: { retention: settings.streamer.logRetention },
    },
  ],
  transform: {
    // SST's execution role may read every secret and parameter in the account; this one needs exactly two.
    executionRole: (args) => {
      args.inlinePolicies = [
        {
          name: 'inline',
          policy: aws.iam.getPolicyDocumentOutput({
            statements: [
              { actions: ['secretsmanager:GetSecretValue'], resources: [managedSourceUrl.arn, managedTargetUrl.arn] },
            ],
          }).json,
        },
      ];
    },
    // SST has no stopTimeout argument; ECS's default of 30 s is too short to commit and checkpoint under load.
    // SST also sets pseudoTerminal: the process would see a TTY and CloudWatch would get status-line redraws
    // instead of JSON log lines and the embedded-metric lines the alarms read.
    taskDefinition: (args) => {
      args.containerDefinitions = $util.output(args.containerDefinitions).apply((json) =>
        JSON.stringify(
          (JSON.parse(json) as Record<string, unknown>[]).map((c) => ({
            ...c,
            stopTimeout: settings.streamer.stopTimeoutSeconds,
            pseudoTerminal: false,
          })),
        ),
      );
    },
  },
});
