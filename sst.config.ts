/// <reference path="./.sst/platform/config.d.ts" />

/**
 * Ferry on AWS: Step Functions runs the migration workflow, Lambdas do its steps and copy the ranges that SQS hands
 * out, DynamoDB holds the state, and a Fargate task streams changes after the snapshot. See README "Deploy on AWS".
 *
 * SST evaluates this file itself: it may not import anything at the top level, so the infra modules are loaded in
 * run(), where the `sst`, `aws` and `$…` globals exist. Tunables are in infra/settings.ts.
 */
export default $config({
  app(input) {
    return {
      name: 'ferry',
      home: 'aws',
      // `retain` keeps the state table (and the VPC) of a production stage that is removed by mistake: it holds the
      // plan and every range's cursor. Other stages are scratch and go away completely.
      removal: input?.stage === 'prod' ? 'retain' : 'remove',
    };
  },
  async run() {
    // Order matters only for readability: each module imports what it needs from the others.
    const { vpc } = await import('./infra/vpc');
    const { stateTable } = await import('./infra/state');
    const { rangeJobs, rangeJobsDlq } = await import('./infra/queue');
    const { cluster, streamer } = await import('./infra/streamer');
    await import('./infra/functions');
    const { stateMachine } = await import('./infra/workflow');
    const { triggers } = await import('./infra/triggers');
    await import('./infra/supervisor');
    const { alarmTopic, dashboard } = await import('./infra/alarms');
    const { managedSourceUrl, managedTargetUrl } = await import('./infra/secrets');

    return {
      // `npx ferry aws start|status|stop|verify|cleanup` and the README's console steps use these.
      stateMachineArn: stateMachine.arn,
      stateTable: stateTable.name,
      queueUrl: rangeJobs.url,
      deadLetterQueueUrl: rangeJobsDlq.url,
      cluster: cluster.nodes.cluster.name,
      streamerTaskDefinition: streamer.taskDefinition,
      vpc: vpc.id,
      triggers: triggers.map((rule) => rule.name),
      // `ferry aws verify|cleanup` read these when the config file has no source/target of its own.
      sourceUrlSecret: managedSourceUrl.arn,
      targetUrlSecret: managedTargetUrl.arn,
      alarmTopic: alarmTopic.arn,
      dashboard: dashboard.dashboardName,
    };
  },
});
