import middy from '@middy/core';
import { status, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `Status`: see src/runtime/aws/activities.ts. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler(async (input) => status(await awsContext(), input));
