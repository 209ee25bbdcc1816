/**
 * The ChangeSource and ChangeTarget contract suites (test/contracts) against the PostgreSQL adapters, on a pair of
 * embedded clusters (the source with wal_level=logical). Other engines register their adapters with the same suites.
 */
import { PG_CHANGE_SOURCE_CAPABILITIES, PG_CHANGE_TARGET_CAPABILITIES } from '../src/adapters/postgres/capabilities.js';
import { changeSourceContract } from './contracts/change-source.contract.js';
import { changeTargetContract } from './contracts/change-target.contract.js';
import { pgChangeSourceHarness, pgChangeTargetHarness } from './contracts/pg.harness.js';
import { usePgPair } from './support/pg-pair.js';

const pair = usePgPair();

// Streamed in-progress transactions are on by default (protocol v2 on PostgreSQL 14+).
changeSourceContract('PgChangeSource', { ...PG_CHANGE_SOURCE_CAPABILITIES, streamedTransactions: true }, () => pgChangeSourceHarness(pair())());
changeTargetContract('PgChangeTarget', PG_CHANGE_TARGET_CAPABILITIES, () => pgChangeTargetHarness(pair())());
