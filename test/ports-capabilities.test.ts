/** The runtime's decisions from declared capabilities (core/ports/capabilities.ts), without a database. */
import { describe, expect, it } from 'vitest';
import { PG_CHANGE_SOURCE_CAPABILITIES, PG_CHANGE_TARGET_CAPABILITIES, PG_SNAPSHOT_SOURCE_CAPABILITIES, PG_SNAPSHOT_TARGET_CAPABILITIES } from '../src/adapters/postgres/capabilities.js';
import { keylessNotStreamable, sameEncoding } from '../src/core/ports/capabilities.js';
import type { TableSchema } from '../src/core/model.js';

const t = (name: string, primaryKey: string[]): TableSchema => ({
  source: { schema: 'app', name },
  target: { schema: 'app', name },
  columns: [{ name: 'id', type: 'integer', nullable: false }],
  primaryKey,
  estimatedRows: 0,
  estimatedBytes: 0,
  extra: null,
});
const tables = [t('keyed', ['id']), t('loose', [])];
const pg = { source: PG_CHANGE_SOURCE_CAPABILITIES, target: PG_CHANGE_TARGET_CAPABILITIES };

describe('capability checks', () => {
  it('PostgreSQL → PostgreSQL: a keyless table streams only over a copy read under the exact start snapshot', () => {
    expect(keylessNotStreamable(tables, pg, false)).toEqual(['app.loose']);
    expect(keylessNotStreamable(tables, pg, true)).toEqual([]);
  });

  it('a target whose keyless replay converges, or a source without a consistent snapshot, decide it', () => {
    expect(keylessNotStreamable(tables, { ...pg, target: { ...pg.target, keylessReplay: true } }, false)).toEqual([]);
    expect(keylessNotStreamable(tables, { ...pg, source: { ...pg.source, consistentSnapshot: false } }, true)).toEqual(['app.loose']);
  });

  it('PostgreSQL → PostgreSQL needs no codec; a MongoDB source into PostgreSQL does', () => {
    expect(sameEncoding(PG_CHANGE_SOURCE_CAPABILITIES, PG_CHANGE_TARGET_CAPABILITIES)).toBe(true);
    expect(sameEncoding(PG_SNAPSHOT_SOURCE_CAPABILITIES, PG_SNAPSHOT_TARGET_CAPABILITIES)).toBe(true);
    expect(sameEncoding({ encoding: 'mongo-ejson' }, PG_CHANGE_TARGET_CAPABILITIES)).toBe(false);
  });

  it('declarations are plain, frozen JSON', () => {
    for (const c of [PG_CHANGE_SOURCE_CAPABILITIES, PG_CHANGE_TARGET_CAPABILITIES, PG_SNAPSHOT_SOURCE_CAPABILITIES, PG_SNAPSHOT_TARGET_CAPABILITIES]) {
      expect(JSON.parse(JSON.stringify(c))).toEqual(c);
      expect(Object.isFrozen(c)).toBe(true);
    }
  });
});
