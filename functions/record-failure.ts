import middy from '@middy/core';
import { recordFailure, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `RecordFailure` (every Catch leads here): see src/runtime/aws/activities.ts. */
export const handler = middy<Parameters<typeof recordFailure>[1]>()
  .use(explainErrors())
  .handler(async (input) => recordFailure(await awsContext(), input));
