import middy from '@middy/core';
import { startStreamer, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext, streamerLauncher } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `StartStreamer`: runs the Fargate streamer task for the flow. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler(async (input) => startStreamer(await awsContext(), streamerLauncher(), input));
