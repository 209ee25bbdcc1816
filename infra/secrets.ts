/**
 * The two database URLs (with passwords). Set them once per stage:
 *   npx sst secret set SourceUrl 'postgres://…' --stage prod
 *   npx sst secret set TargetUrl 'postgres://…' --stage prod
 *
 * Nothing links the sst.Secret itself. Linked to a Lambda, SST encrypts the value into the function bundle with the
 * key in the function's configuration, so anyone who may read the function's code and configuration has the URL.
 *
 * A Task must not link them either: SST turns a Task's links into plain `environment` entries of the ECS task
 * definition (SST_RESOURCE_SourceUrl={"value":"postgres://user:password@…"}), readable by anyone allowed
 * ecs:DescribeTaskDefinition, and passes them to the image build as build secrets too. So each value is copied
 * into an AWS Secrets Manager secret. The task definition references it by ARN (container `secrets` with
 * `valueFrom`): ECS resolves it when the task starts. The Lambdas get the ARN as environment and read the value at
 * run time (functions/lib/context.ts). Either way the value appears in no bundle, configuration or definition.
 */

export const sourceUrl = new sst.Secret('SourceUrl');
export const targetUrl = new sst.Secret('TargetUrl');

function managedCopy(name: string, what: string, secret: sst.Secret) {
  const managed = new aws.secretsmanager.Secret(`${name}Managed`, {
    description: `Ferry ${what} database URL for ${$app.name}/${$app.stage}, copied from the SST secret ${name}; read by the Lambdas and the streamer task`,
  });
  new aws.secretsmanager.SecretVersion(`${name}ManagedVersion`, {
    secretId: managed.id,
    secretString: secret.value,
  });
  return managed;
}

/** Secrets Manager copies for the streamer; their ARNs go into the task definition, their values do not. */
export const managedSourceUrl = managedCopy('SourceUrl', 'source', sourceUrl);
export const managedTargetUrl = managedCopy('TargetUrl', 'target', targetUrl);
