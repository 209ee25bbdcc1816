/**
 * The only place the Lambdas read SST's linked resources. Each function is linked to just what it uses (scoped
 * IAM), so a link that is absent simply leaves its setting unset.
 */
import { Resource } from 'sst';
import { createAwsContext, type AwsContext } from '../../src/runtime/aws/context.js';

function linked<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

let context: AwsContext | undefined;

export function awsContext(): AwsContext {
  context ??= createAwsContext({
    stateTable: Resource.FerryState.name,
    queueUrl: linked(() => Resource.RangeJobs.url),
    sourceUrl: linked(() => Resource.SourceUrl.value),
    targetUrl: linked(() => Resource.TargetUrl.value),
  });
  return context;
}
