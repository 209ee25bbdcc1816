/**
 * The port contract suites (test/contracts) against the MongoDB adapters, on a real MongoDB replica set or sharded
 * cluster named by MONGODB_URL. Without it (no MongoDB server can run on the development machines) every suite is
 * skipped and says why.
 */
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll } from 'vitest';
import {
  MONGO_CHANGE_SOURCE_CAPABILITIES,
  MONGO_CHANGE_TARGET_CAPABILITIES,
  MONGO_SNAPSHOT_SOURCE_CAPABILITIES,
  MONGO_SNAPSHOT_TARGET_CAPABILITIES,
} from '../src/adapters/mongodb/capabilities.js';
import { MONGO_CHECKSUM_KIND } from '../src/adapters/mongodb/checksum.js';
import { changeSourceContract } from './contracts/change-source.contract.js';
import { changeTargetContract } from './contracts/change-target.contract.js';
import { checksumsContract } from './contracts/checksums.contract.js';
import {
  mongoChangeSourceHarness,
  mongoChangeTargetHarness,
  mongoChecksumsHarness,
  mongoSnapshotSourceHarness,
  mongoSnapshotTargetHarness,
  type MongoPair,
} from './contracts/mongo.harness.js';
import { snapshotSourceContract } from './contracts/snapshot-source.contract.js';
import { snapshotTargetContract } from './contracts/snapshot-target.contract.js';

const url = process.env.MONGODB_URL;
const skip = url ? undefined : 'MONGODB_URL is not set: no MongoDB server here';
// The default reporter shows only a count of skipped tests: say why, once per run of this file.
if (!url) console.warn(`test/ports-mongo.test.ts: every MongoDB contract suite skipped: ${skip}; set MONGODB_URL to a replica set (NOTES.md / README: how to start one)`);
let pair: MongoPair | undefined;
const p = () => {
  if (!pair) throw new Error('MongoDB pair not started');
  return pair;
};

if (url) {
  beforeAll(async () => {
    const client = new MongoClient(url);
    await client.connect();
    pair = { url, client, src: `ferry_csrc_${process.pid}`, dst: `ferry_cdst_${process.pid}` };
  });
  afterAll(async () => {
    await pair?.client.db(pair.src).dropDatabase().catch(() => {});
    await pair?.client.db(pair.dst).dropDatabase().catch(() => {});
    await pair?.client.close();
  });
}

snapshotSourceContract('MongoSnapshotSource', MONGO_SNAPSHOT_SOURCE_CAPABILITIES, () => mongoSnapshotSourceHarness(p())(), { skip });
snapshotTargetContract('MongoSnapshotTarget', MONGO_SNAPSHOT_TARGET_CAPABILITIES, () => mongoSnapshotTargetHarness(p())(), { skip });
checksumsContract('MongoSnapshotSource / MongoSnapshotTarget', MONGO_CHECKSUM_KIND, () => mongoChecksumsHarness(p())(), { skip });
changeSourceContract('MongoChangeSource', MONGO_CHANGE_SOURCE_CAPABILITIES, () => mongoChangeSourceHarness(p())(), { skip });
changeTargetContract('MongoChangeTarget', MONGO_CHANGE_TARGET_CAPABILITIES, () => mongoChangeTargetHarness(p())(), { skip });
