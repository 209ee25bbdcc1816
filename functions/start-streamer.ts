import middy from '@middy/core';
import { Resource } from 'sst';
import { EcsStreamerLauncher } from '../src/adapters/ecs/ecs-launcher.js';
import { startStreamer, type WorkflowInput } from '../src/runtime/aws/activities.js';
import { awsContext } from './lib/context.js';
import { explainErrors } from './lib/middleware.js';

/** Step Functions state `StartStreamer`: runs the Fargate streamer task for the flow. */
export const handler = middy<WorkflowInput>()
  .use(explainErrors())
  .handler((input) => {
    const task = Resource.Streamer;
    const launcher = new EcsStreamerLauncher({ ...task, container: task.containers[0] ?? 'streamer' });
    return startStreamer(awsContext(), launcher, input);
  });
