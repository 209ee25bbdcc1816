import middy from '@middy/core';
import { validate, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext, deploymentLimits, sfnExecutions } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `Validate`: see src/runtime/aws/activities.ts. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler(async (input) => validate(await awsContext(), input, { executions: sfnExecutions, limits: deploymentLimits() }));
