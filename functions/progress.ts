import middy from '@middy/core';
import { progress, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `Progress`: see src/runtime/aws/activities.ts. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler(async (input) => progress(await awsContext(), input));
