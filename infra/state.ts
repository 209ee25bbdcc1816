/**
 * The state store: one DynamoDB table shared by the Lambdas and the streamer, with the job-status index. The key
 * schema comes from the adapter itself, so the deployed table and the one the tests create cannot drift apart.
 * The store writes no expiring items (flows, jobs, checkpoints and leases are all kept), so there is no TTL.
 */
import { STATE_TABLE_SCHEMA } from '../src/adapters/dynamodb/state-table';

export const stateTable = new sst.aws.Dynamo('FerryState', {
  fields: STATE_TABLE_SCHEMA.fields,
  primaryIndex: STATE_TABLE_SCHEMA.primaryIndex,
  // SST's default projection is `all`, which listJobs by status needs (it reads whole job records from the GSI).
  globalIndexes: STATE_TABLE_SCHEMA.globalIndexes,
  // The table holds the plan and every range's cursor; losing it means starting the migration over.
  deletionProtection: $app.stage === 'prod',
});
