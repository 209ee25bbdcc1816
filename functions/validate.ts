import middy from '@middy/core';
import { validate, type ValidateDeps, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext, deploymentLimits, sfnExecutions } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `Validate`: see src/runtime/aws/activities.ts. Tests pass their own Step Functions view. */
export function validateHandler(deps: () => ValidateDeps) {
  return middy<WorkflowInput>()
    .use(explainErrors())
    .handler(async (input) => validate(await awsContext(), input, deps()));
}

export const handler = validateHandler(() => ({ executions: sfnExecutions, limits: deploymentLimits() }));
