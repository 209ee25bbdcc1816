import middy from '@middy/core';
import { finalize, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `Finalize`: see src/runtime/aws/activities.ts. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler(async (input) => finalize(await awsContext(), input));
