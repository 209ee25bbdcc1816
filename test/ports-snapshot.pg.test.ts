/**
 * The SnapshotSource, SnapshotTarget and Checksums contract suites (test/contracts) against the PostgreSQL
 * adapters, on a pair of embedded clusters. Other engines register their adapters with the same suites.
 */
import { PG_CHECKSUM_KIND, PG_SNAPSHOT_SOURCE_CAPABILITIES, PG_SNAPSHOT_TARGET_CAPABILITIES } from '../src/adapters/postgres/capabilities.js';
import { checksumsContract } from './contracts/checksums.contract.js';
import { pgChecksumsHarness, pgSnapshotSourceHarness, pgSnapshotTargetHarness } from './contracts/pg.harness.js';
import { snapshotSourceContract } from './contracts/snapshot-source.contract.js';
import { snapshotTargetContract } from './contracts/snapshot-target.contract.js';
import { usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

snapshotSourceContract('PgSnapshotSource', PG_SNAPSHOT_SOURCE_CAPABILITIES, () => pgSnapshotSourceHarness(pair())());
snapshotTargetContract('PgSnapshotTarget', PG_SNAPSHOT_TARGET_CAPABILITIES, () => pgSnapshotTargetHarness(pair())());
checksumsContract('PgSnapshotSource / PgSnapshotTarget', PG_CHECKSUM_KIND, () => pgChecksumsHarness(pair())());
