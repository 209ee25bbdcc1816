/** Starts the streamer as a Fargate task (ECS RunTask), handing it only the flow id (the config is in the state store). */
import { ECSClient, RunTaskCommand } from '@aws-sdk/client-ecs';
import type { StreamerLauncher } from '../../runtime/aws/launcher.js';

export interface EcsTaskSettings {
  cluster: string;
  taskDefinition: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  container: string;
}

export class EcsStreamerLauncher implements StreamerLauncher {
  constructor(
    private readonly task: EcsTaskSettings,
    private readonly client = new ECSClient({}),
  ) {}

  async launch(flow: string): Promise<string> {
    const out = await this.client.send(
      new RunTaskCommand({
        cluster: this.task.cluster,
        taskDefinition: this.task.taskDefinition,
        launchType: 'FARGATE',
        count: 1,
        // Idempotency: a retried Step Functions task starts a second streamer at worst, and the lease lets one run.
        startedBy: `ferry-${flow}`.slice(0, 36),
        networkConfiguration: {
          awsvpcConfiguration: {
            subnets: this.task.subnets,
            securityGroups: this.task.securityGroups,
            assignPublicIp: this.task.assignPublicIp ? 'ENABLED' : 'DISABLED',
          },
        },
        overrides: {
          containerOverrides: [
            {
              name: this.task.container,
              // RunTask overrides are capped at 8 KB: the flow id fits, a config with many patterns might not.
              environment: [{ name: 'FERRY_FLOW', value: flow }],
            },
          ],
        },
      }),
    );
    const failure = out.failures?.[0];
    if (failure) throw new Error(`ECS could not start the streamer: ${failure.reason ?? 'unknown'} ${failure.detail ?? ''}`);
    return out.tasks?.[0]?.taskArn ?? 'unknown';
  }
}
