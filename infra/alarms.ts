/**
 * Alarms and the dashboard. Every alarm notifies the FerryAlarms SNS topic (subscribe an address with
 * FERRY_ALARM_EMAIL, or `aws sns subscribe` to the `alarmTopic` output); thresholds are in settings.ts. What each
 * alarm means and what to do is in the README ("Watch a migration").
 *
 * Ferry's own metrics (namespace Ferry) come from embedded-metric-format lines: the streamer prints CdcLagSeconds,
 * CdcLagBytes, RetainedWalBytes and StreamerUp every health interval, SuperviseStreamer StreamerRestarts, and
 * CopyRange JobsDone and RowsCopied. CloudWatch Logs extracts them from the log groups; each is published per flow
 * (dimension Flow) and across flows (no dimension), which is what the alarms read, so they need no flow ids.
 */
import { copyRange, superviseStreamer } from './functions';
import { rangeJobs, rangeJobsDlq } from './queue';
import { settings } from './settings';
import { stateMachine } from './workflow';

const t = settings.alarms;

export const alarmTopic = new aws.sns.Topic('FerryAlarms', { displayName: `Ferry ${$app.stage} alarms` });
if (t.email) new aws.sns.TopicSubscription('FerryAlarmsEmail', { topic: alarmTopic.arn, protocol: 'email', endpoint: t.email });

type AlarmArgs = Omit<aws.cloudwatch.MetricAlarmArgs, 'alarmActions' | 'okActions'>;

function alarm(name: string, args: AlarmArgs) {
  return new aws.cloudwatch.MetricAlarm(name, {
    ...args,
    name: `${$app.name}-${$app.stage}-${name}`,
    alarmActions: [alarmTopic.arn],
    okActions: [alarmTopic.arn],
  });
}

const copyFunctionName = copyRange.nodes.function.name;
const queueName = rangeJobs.nodes.queue.name;
const dlqName = rangeJobsDlq.nodes.queue.name;

export const alarms = [
  alarm('RangeJobsInDlq', {
    alarmDescription: 'Range-job messages reached the dead-letter queue: a job whose deliveries all failed without Ferry recording it. See README "Watch a migration".',
    namespace: 'AWS/SQS', metricName: 'ApproximateNumberOfMessagesVisible', dimensions: { QueueName: dlqName },
    statistic: 'Maximum', period: 300, evaluationPeriods: 1, threshold: 0, comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('CopyErrors', {
    alarmDescription: 'The copy function failed (timeouts, crashes, errors it could not record). Jobs are retried; check its log group.',
    namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: copyFunctionName },
    statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 0, comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('OldestRangeJob', {
    alarmDescription: `A range job has waited over ${t.oldestMessageSeconds / 60} minutes in the queue: the copies are not keeping up (concurrency too low, or the function failing).`,
    namespace: 'AWS/SQS', metricName: 'ApproximateAgeOfOldestMessage', dimensions: { QueueName: queueName },
    statistic: 'Maximum', period: 300, evaluationPeriods: 2, threshold: t.oldestMessageSeconds, comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('ExecutionFailed', {
    alarmDescription: 'A migration execution failed, timed out or was aborted; its flow records `failed` with the cause (`ferry aws status`). The slot keeps WAL until you restart or clean up.',
    metricQueries: [
      { id: 'failed', returnData: false, metric: { namespace: 'AWS/States', metricName: 'ExecutionsFailed', dimensions: { StateMachineArn: stateMachine.arn }, stat: 'Sum', period: 300 } },
      { id: 'timedout', returnData: false, metric: { namespace: 'AWS/States', metricName: 'ExecutionsTimedOut', dimensions: { StateMachineArn: stateMachine.arn }, stat: 'Sum', period: 300 } },
      { id: 'aborted', returnData: false, metric: { namespace: 'AWS/States', metricName: 'ExecutionsAborted', dimensions: { StateMachineArn: stateMachine.arn }, stat: 'Sum', period: 300 } },
      { id: 'all', expression: 'FILL(failed, 0) + FILL(timedout, 0) + FILL(aborted, 0)', label: 'executions ended badly', returnData: true },
    ],
    evaluationPeriods: 1, threshold: 0, comparisonOperator: 'GreaterThanThreshold', treatMissingData: 'notBreaching',
  }),
  alarm('StreamerDown', {
    alarmDescription: 'The supervisor could not relaunch a stopped streamer (ECS refused RunTask, image missing, no capacity): nothing applies changes and the slot retains WAL.',
    namespace: 'AWS/Lambda', metricName: 'Errors', dimensions: { FunctionName: superviseStreamer.name },
    statistic: 'Sum', period: 300, evaluationPeriods: 1, threshold: 0, comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('StreamerRestarting', {
    alarmDescription: `The streamer stopped and was relaunched ${t.streamerRestartsPerHour} or more times in an hour: a crash loop (OOM, a stall, a database refusing it). Read the streamer log group.`,
    namespace: 'Ferry', metricName: 'StreamerRestarts',
    statistic: 'Sum', period: 3600, evaluationPeriods: 1, threshold: t.streamerRestartsPerHour, comparisonOperator: 'GreaterThanOrEqualToThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('CdcLag', {
    alarmDescription: `Changes reach the target more than ${t.cdcLagSeconds} s after their commit on the source, for 3 of 5 minutes.`,
    namespace: 'Ferry', metricName: 'CdcLagSeconds',
    statistic: 'Maximum', period: 60, evaluationPeriods: 5, datapointsToAlarm: 3, threshold: t.cdcLagSeconds, comparisonOperator: 'GreaterThanThreshold',
    treatMissingData: 'notBreaching',
  }),
  alarm('RetainedWal', {
    alarmDescription: `The source retains more than ${Math.round(t.retainedWalBytes / 1024 / 1024)} MB of WAL for Ferry's slot: its disk fills if this grows. A streamer behind or down, or a flow nobody cleaned up.`,
    namespace: 'Ferry', metricName: 'RetainedWalBytes',
    statistic: 'Maximum', period: 300, evaluationPeriods: 1, threshold: t.retainedWalBytes, comparisonOperator: 'GreaterThanThreshold',
    // No samples while a flow streams means no streamer: StreamerDown/StreamerRestarting say so.
    treatMissingData: 'notBreaching',
  }),
];

const region = aws.getRegionOutput().region;

/** One dashboard: the snapshot (jobs done, rows/s, queue), the stream (lag, retained WAL, restarts), the alarms. */
export const dashboard = new aws.cloudwatch.Dashboard('FerryDashboard', {
  dashboardName: `${$app.name}-${$app.stage}`,
  dashboardBody: $jsonStringify({
    widgets: [
      widget(0, 0, 'Range jobs done', [['Ferry', 'JobsDone', { stat: 'Sum', period: 60 }]]),
      widget(8, 0, 'Rows copied per second', [[{ expression: 'm1 / PERIOD(m1)', label: 'rows/s', id: 'e1' }], ['Ferry', 'RowsCopied', { stat: 'Sum', period: 60, id: 'm1', visible: false }]]),
      widget(16, 0, 'Range jobs waiting', [
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', queueName, { stat: 'Maximum', label: 'queued' }],
        ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', dlqName, { stat: 'Maximum', label: 'dead-letter' }],
      ]),
      widget(0, 6, 'CDC lag (s)', [['Ferry', 'CdcLagSeconds', { stat: 'Maximum', period: 60 }]]),
      widget(8, 6, 'Retained WAL (bytes)', [['Ferry', 'RetainedWalBytes', { stat: 'Maximum', period: 60 }]]),
      widget(16, 6, 'Streamer up / restarts', [
        ['Ferry', 'StreamerUp', { stat: 'SampleCount', period: 300, label: 'health samples' }],
        ['Ferry', 'StreamerRestarts', { stat: 'Sum', period: 300, label: 'restarts' }],
      ]),
      {
        type: 'alarm', x: 0, y: 12, width: 24, height: 3,
        properties: { title: 'Ferry alarms', alarms: alarms.map((a) => a.arn) },
      },
    ],
  }),
});

function widget(x: number, y: number, title: string, metrics: unknown[]) {
  return { type: 'metric', x, y, width: 8, height: 6, properties: { title, region, metrics, view: 'timeSeries', stacked: false } };
}
