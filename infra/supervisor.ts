/**
 * The streamer's supervisor: every streamer task that stops (an OOM kill, exit 1 after a stall, a Fargate
 * retirement, a `stop-task`) raises an ECS "Task State Change" event; this rule hands it to SuperviseStreamer, which
 * starts a replacement unless the flow is stopped, done or failed (src/runtime/aws/supervisor.ts). Only the flow id
 * travels: the function reads it from the stopped task's RunTask override.
 *
 * A rule rather than an ECS service with desired count 1: a service runs one task definition with fixed
 * environment for the whole deployment, while streamers are per flow and end for good when their flow is stopped.
 */
import { superviseStreamer } from './functions';
import { cluster, streamer } from './streamer';

const rule = new aws.cloudwatch.EventRule('StreamerStopped', {
  description: 'Ferry: a streamer task stopped; SuperviseStreamer relaunches it while its flow streams',
  eventPattern: $jsonStringify({
    source: ['aws.ecs'],
    'detail-type': ['ECS Task State Change'],
    detail: {
      clusterArn: [cluster.nodes.cluster.arn],
      lastStatus: ['STOPPED'],
      // RunTask's default task group is the family; this keeps any other task of the cluster out.
      group: [$interpolate`family:${streamer.nodes.taskDefinition.family}`],
    },
  }),
});

new aws.lambda.Permission('StreamerStoppedInvoke', {
  action: 'lambda:InvokeFunction',
  function: superviseStreamer.name,
  principal: 'events.amazonaws.com',
  sourceArn: rule.arn,
});

new aws.cloudwatch.EventTarget('StreamerStoppedTarget', {
  rule: rule.name,
  arn: superviseStreamer.arn,
  // A relaunch that keeps failing (ECS capacity, a missing image) is retried for an hour, then the function's
  // Errors metric has long raised the "streamer down" alarm (alarms.ts).
  retryPolicy: { maximumRetryAttempts: 20, maximumEventAgeInSeconds: 3600 },
});

export const streamerStoppedRule = rule;
