/**
 * The two database URLs (with passwords). Set them once per stage:
 *   npx sst secret set SourceUrl 'postgres://…' --stage prod
 *   npx sst secret set TargetUrl 'postgres://…' --stage prod
 *
 * Lambdas link the sst.Secret directly: SST encrypts linked values into the function bundle and the `sst` SDK
 * decrypts them with a key held in the function's configuration.
 *
 * The streamer task must not link them: SST turns a Task's links into plain `environment` entries of the ECS task
 * definition (SST_RESOURCE_SourceUrl={"value":"postgres://user:password@…"}), readable by anyone allowed
 * ecs:DescribeTaskDefinition, and passes them to the image build as build secrets too. So each value is copied
 * into an AWS Secrets Manager secret, and the task definition references it by ARN (container `secrets` with
 * `valueFrom`): ECS resolves it when the task starts, and the value never appears in the task definition.
 */

export const sourceUrl = new sst.Secret('SourceUrl');
export const targetUrl = new sst.Secret('TargetUrl');

function managedCopy(name: string, what: string, secret: sst.Secret) {
  const managed = new aws.secretsmanager.Secret(`${name}Managed`, {
    description: `Ferry ${what} database URL for ${$app.name}/${$app.stage}, copied from the SST secret ${name}; read by the streamer task`,
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
