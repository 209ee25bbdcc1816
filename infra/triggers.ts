/**
 * Optional EventBridge triggers that start a migration execution with a fixed input (a Ferry config): on a
 * schedule (FERRY_SYNC_SCHEDULE), on matching events (FERRY_SYNC_EVENT_PATTERN), or both. Nothing is created
 * unless one of them is set, and then FERRY_SYNC_INPUT_FILE names the config to send.
 *
 * Starting the workflow again for a flow that exists resumes it (Plan is idempotent, done ranges stay done, a
 * finished flow is left as it is), so a schedule retries a migration that failed without copying anything twice.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { executionInput } from '../src/cli/aws-input';
import { settings } from './settings';
import { stateMachine } from './workflow';

const { schedule, eventPattern, inputFile } = settings.trigger;

/**
 * The same input `ferry aws start` sends (src/cli/aws-input.ts): the config with `source`/`target` replaced by the
 * `${FERRY_SOURCE_URL}`/`${FERRY_TARGET_URL}` placeholders and `state` dropped, validated now so a typo fails the
 * deploy. EventBridge keeps the input in plain text, which is fine because no credential is left in it.
 */
function loadInput(file: string): string {
  const path = isAbsolute(file) ? file : join($cli.paths.root, file);
  return JSON.stringify(executionInput(parseYaml(readFileSync(path, 'utf8'))).input);
}

function createTriggers(): aws.cloudwatch.EventRule[] {
  if (!schedule && !eventPattern) {
    if (inputFile) throw new Error('FERRY_SYNC_INPUT_FILE is set but neither FERRY_SYNC_SCHEDULE nor FERRY_SYNC_EVENT_PATTERN');
    return [];
  }
  if (!inputFile) throw new Error('FERRY_SYNC_SCHEDULE / FERRY_SYNC_EVENT_PATTERN need FERRY_SYNC_INPUT_FILE (the config to run)');
  const input = loadInput(inputFile);

  const role = new aws.iam.Role('SyncTriggerRole', {
    assumeRolePolicy: aws.iam.assumeRolePolicyForPrincipal({ Service: 'events.amazonaws.com' }),
  });
  new aws.iam.RolePolicy('SyncTriggerRolePolicy', {
    role: role.id,
    policy: aws.iam.getPolicyDocumentOutput({
      statements: [{ actions: ['states:StartExecution'], resources: [stateMachine.arn] }],
    }).json,
  });

  const rules: Record<string, aws.cloudwatch.EventRuleArgs> = {};
  if (schedule) rules.SyncSchedule = { description: `Ferry: start a migration on ${schedule}`, scheduleExpression: schedule };
  if (eventPattern) {
    try {
      JSON.parse(eventPattern);
    } catch {
      throw new Error(`FERRY_SYNC_EVENT_PATTERN is not JSON: ${eventPattern}`);
    }
    rules.SyncEvent = { description: 'Ferry: start a migration on a matching event', eventPattern };
  }
  return Object.entries(rules).map(([name, args]) => {
    const rule = new aws.cloudwatch.EventRule(name, args);
    new aws.cloudwatch.EventTarget(`${name}Target`, { rule: rule.name, arn: stateMachine.arn, roleArn: role.arn, input });
    return rule;
  });
}

export const triggers = createTriggers();
