/** The pure decisions behind schema, partition and table-set changes while streaming, on scripted sequences. */
import { describe, expect, it } from 'vitest';
import { evolveColumns, trackTable, type CatalogColumn, type TrackedTable } from '../src/core/cdc/evolve-columns.js';
import type { RelationInfo } from '../src/core/cdc/evolve-contract.js';
import { decodeMarker, diffLeaves, encodeMarker, leafSchema, PARTS_PREFIX, tablesToAdd } from '../src/core/cdc/evolve-tables.js';
import type { TableSchema } from '../src/core/model.js';
import { matchesSelection } from '../src/core/selection.js';

const INT4 = 23;
const TEXT = 25;
const NUMERIC = 1700;

const schema: TableSchema = {
  source: { schema: 'app', name: 'orders' },
  target: { schema: 'app', name: 'orders' },
  columns: [
    { name: 'id', type: 'integer', nullable: false },
    { name: 'note', type: 'text', nullable: true },
    { name: 'total', type: 'numeric(10,2)', nullable: true },
  ],
  primaryKey: ['id'],
  estimatedRows: 0,
  estimatedBytes: 0,
  extra: null,
};

const cat = (attnum: number, name: string, type: string, typeOid: number, typeMod = -1, more: Partial<CatalogColumn> = {}): CatalogColumn => ({
  attnum, name, type, typeOid, typeMod, nullable: name !== 'id', ...more,
});
const START = [cat(1, 'id', 'integer', INT4), cat(2, 'note', 'text', TEXT), cat(3, 'total', 'numeric(10,2)', NUMERIC, 655366)];

const rel = (...cols: [string, number, number?, boolean?][]): RelationInfo => ({
  id: '16400',
  table: 'app.orders',
  replicaIdentity: 'd',
  columns: cols.map(([name, typeOid, typeMod, key]) => ({ name, typeOid, typeMod: typeMod ?? -1, key: key ?? name === 'id' })),
});
const BASE: [string, number, number?][] = [['id', INT4], ['note', TEXT], ['total', NUMERIC, 655366]];

describe('evolveColumns', () => {
  const tracked = (): TrackedTable => trackTable(schema, START);

  it('sees nothing to do when the columns are the ones it knows', () => {
    expect(evolveColumns(tracked(), rel(...BASE), START)).toEqual({ kind: 'same' });
  });

  it('adds a column with the type, default and nullability of the catalog, and remembers it', () => {
    const catalog = [...START, cat(4, 'status', 'text', TEXT, -1, { nullable: false, default: "'new'::text" })];
    const evo = evolveColumns(tracked(), rel(...BASE, ['status', TEXT]), catalog);
    expect(evo.kind).toBe('apply');
    if (evo.kind !== 'apply') return;
    expect(evo.steps).toEqual([{ op: 'add', column: { name: 'status', type: 'text', nullable: false, default: "'new'::text" } }]);
    expect(evo.table.schema.columns.map((c) => c.name)).toEqual(['id', 'note', 'total', 'status']);
    expect(evo.table.attnums.status).toBe(4);
    // The next message with the same columns is a no-op.
    expect(evolveColumns(evo.table, rel(...BASE, ['status', TEXT]), catalog)).toEqual({ kind: 'same' });
  });

  it('a column renamed before tracking began is a rename when the plan recorded its attnum, and pauses otherwise', () => {
    // The catalog at the streamer's start already says `remark` (renamed after the snapshot described `note`).
    const renamedEarly = [START[0]!, cat(2, 'remark', 'text', TEXT), START[2]!];
    const withPlan = trackTable(schema, renamedEarly, { id: 1, note: 2, total: 3 });
    expect(withPlan.attnums.note).toBe(2);
    const evo = evolveColumns(withPlan, rel(['id', INT4], ['remark', TEXT], ['total', NUMERIC, 655366]), renamedEarly);
    expect(evo.kind === 'apply' && evo.steps).toEqual([{ op: 'rename', from: 'note', to: 'remark' }]);
    const without = trackTable(schema, renamedEarly);
    expect(evolveColumns(without, rel(['id', INT4], ['remark', TEXT], ['total', NUMERIC, 655366]), renamedEarly).kind).toBe('pause');
    // An attnum now held by a column the schema also knows by name is not taken for the renamed one.
    const swapped = [START[0]!, cat(2, 'total', 'text', TEXT), cat(4, 'x', 'text', TEXT)];
    expect(trackTable(schema, swapped, { id: 1, note: 2, total: 3 }).attnums.note).toBeUndefined();
  });

  it('tells a rename from a drop plus an add by the attribute number', () => {
    const catalog = [START[0]!, cat(2, 'remark', 'text', TEXT), START[2]!];
    const evo = evolveColumns(tracked(), rel(['id', INT4], ['remark', TEXT], ['total', NUMERIC, 655366]), catalog);
    expect(evo.kind === 'apply' && evo.steps).toEqual([{ op: 'rename', from: 'note', to: 'remark' }]);
    // Drop note, add a new column that happens to be called like something else: attnum 4 is new.
    const catalog2 = [START[0]!, START[2]!, cat(4, 'remark', 'text', TEXT)];
    const evo2 = evolveColumns(tracked(), rel(['id', INT4], ['total', NUMERIC, 655366], ['remark', TEXT]), catalog2);
    expect(evo2.kind === 'apply' && evo2.steps).toEqual([
      { op: 'add', column: { name: 'remark', type: 'text', nullable: true } },
      { op: 'drop', column: 'note' },
    ]);
  });

  it('renames a key column and keeps applying by the renamed key', () => {
    const catalog = [cat(1, 'order_id', 'integer', INT4, -1, { nullable: false }), START[1]!, START[2]!];
    const evo = evolveColumns(tracked(), rel(['order_id', INT4, -1, true], ['note', TEXT], ['total', NUMERIC, 655366]), catalog);
    expect(evo.kind).toBe('apply');
    if (evo.kind === 'apply') expect(evo.table.schema.primaryKey).toEqual(['order_id']);
  });

  it('drops a dropped column', () => {
    const evo = evolveColumns(tracked(), rel(['id', INT4], ['total', NUMERIC, 655366]), [START[0]!, START[2]!]);
    expect(evo.kind === 'apply' && evo.steps).toEqual([{ op: 'drop', column: 'note' }]);
    if (evo.kind === 'apply') expect(evo.table.schema.columns.map((c) => c.name)).toEqual(['id', 'total']);
  });

  it('pauses on a type change, naming the table, the change and the way forward', () => {
    const catalog = [START[0]!, START[1]!, cat(3, 'total', 'numeric(12,4)', NUMERIC, 786440)];
    const evo = evolveColumns(tracked(), rel(['id', INT4], ['note', TEXT], ['total', NUMERIC, 786440]), catalog);
    expect(evo.kind).toBe('pause');
    if (evo.kind === 'pause') {
      expect(evo.reason).toContain('app.orders');
      expect(evo.reason).toContain('column total changed type from numeric(10,2) to numeric(12,4)');
      expect(evo.reason).toMatch(/other tables keep streaming.*ALTER TABLE … TYPE on the target/);
    }
  });

  it('pauses on a type change that happened before tracking began (catalog differs from the planned schema)', () => {
    const drifted = [START[0]!, cat(2, 'note', 'character varying(20)', 1043, 24), START[2]!];
    const evo = evolveColumns(trackTable(schema, drifted), rel(['id', INT4], ['note', 1043, 24], ['total', NUMERIC, 655366]), drifted);
    expect(evo.kind).toBe('pause');
  });

  it('pauses on a changed primary key, and on an added identity or sequence column', () => {
    const keyed = evolveColumns(tracked(), rel(['id', INT4, -1, true], ['note', TEXT, -1, true], ['total', NUMERIC, 655366]), START);
    expect(keyed.kind === 'pause' && keyed.reason).toMatch(/primary key changed from \(id\) to \(id, note\)/);
    const ident = evolveColumns(tracked(), rel(...BASE, ['n', INT4]), [...START, cat(4, 'n', 'integer', INT4, -1, { identity: 'always' })]);
    expect(ident.kind === 'pause' && ident.reason).toMatch(/GENERATED ALWAYS AS IDENTITY/);
    const serial = evolveColumns(tracked(), rel(...BASE, ['n', INT4]), [...START, cat(4, 'n', 'integer', INT4, -1, { default: "nextval('app.orders_n_seq'::regclass)" })]);
    expect(serial.kind === 'pause' && serial.reason).toMatch(/sequence default/);
  });

  it('pauses when a column of the message is no longer in the catalog (changed again since)', () => {
    const evo = evolveColumns(tracked(), rel(...BASE, ['gone', TEXT]), START);
    expect(evo.kind === 'pause' && evo.reason).toMatch(/column gone appeared in the stream but is no longer in the source catalog/);
  });

  it('follows a sequence add, rename, drop across several messages', () => {
    let t = tracked();
    let catalog = [...START, cat(4, 'a', 'integer', INT4, -1, { default: '0' })];
    const steps: unknown[] = [];
    for (const [r, c] of [
      [rel(...BASE, ['a', INT4]), catalog],
      [rel(...BASE, ['b', INT4]), (catalog = [...START, cat(4, 'b', 'integer', INT4)])],
      [rel(['id', INT4], ['total', NUMERIC, 655366], ['b', INT4]), (catalog = [START[0]!, START[2]!, cat(4, 'b', 'integer', INT4)])],
    ] as const) {
      const evo = evolveColumns(t, r, c as CatalogColumn[]);
      if (evo.kind !== 'apply') throw new Error(`expected apply, got ${evo.kind}`);
      steps.push(...evo.steps);
      t = evo.table;
    }
    expect(steps).toEqual([
      { op: 'add', column: { name: 'a', type: 'integer', nullable: true, default: '0' } },
      { op: 'rename', from: 'a', to: 'b' },
      { op: 'drop', column: 'note' },
    ]);
    expect(t.schema.columns.map((c) => c.name)).toEqual(['id', 'total', 'b']);
  });

  it('pauses rather than guess when a column whose attnum it never learned disappears as another appears', () => {
    const renamedBefore = [START[0]!, cat(2, 'remark', 'text', TEXT), START[2]!];
    const t = trackTable(schema, renamedBefore); // `note` is not in the catalog: no attnum for it
    const evo = evolveColumns(t, rel(['id', INT4], ['remark', TEXT], ['total', NUMERIC, 655366]), renamedBefore);
    expect(evo.kind === 'pause' && evo.reason).toMatch(/column remark appeared and note disappeared, and Ferry cannot tell whether it is a rename/);
  });

  it('ignores stored generated columns, which pgoutput does not send', () => {
    const gen: TableSchema = { ...schema, columns: [...schema.columns, { name: 'twice', type: 'numeric', nullable: true, generated: '(total * 2)' }] };
    expect(evolveColumns(trackTable(gen, START), rel(...BASE), START)).toEqual({ kind: 'same' });
  });
});

describe('table-set changes', () => {
  const t = (schema: string, name: string) => ({ schema, name });

  it('markers survive their encoding, and foreign messages are not markers', () => {
    const m = { kind: 'attached', root: 'app.m', leaf: t('app', 'm_2025') } as const;
    expect(decodeMarker(PARTS_PREFIX, encodeMarker(m))).toEqual(m);
    expect(decodeMarker('other', encodeMarker(m))).toBeUndefined();
    expect(decodeMarker(PARTS_PREFIX, 'not json')).toBeUndefined();
    expect(decodeMarker(PARTS_PREFIX, '{"kind":"attached"}')).toBeUndefined();
  });

  it('finds attached and detached leaves', () => {
    const before = new Map([['app.m', [t('app', 'm1'), t('app', 'm2')]]]);
    const now = new Map([['app.m', [t('app', 'm2'), t('app', 'm3')]]]);
    expect(diffLeaves(before, now)).toEqual([
      { kind: 'attached', root: 'app.m', leaf: t('app', 'm3') },
      { kind: 'detached', root: 'app.m', leaf: t('app', 'm1') },
    ]);
    expect(diffLeaves(now, now)).toEqual([]);
  });

  it('takes on new tables the selection matches, never excluded or system ones or known ones', () => {
    const sel = { include: ['app.*', 'ref.codes'], exclude: ['app.tmp_*'], rename: {} };
    const candidates = [t('app', 'orders'), t('app', 'new'), t('app', 'tmp_x'), t('ref', 'codes'), t('ref', 'other'), t('pg_catalog', 'x')];
    expect(tablesToAdd(candidates, sel, new Set(['app.orders']))).toEqual([t('app', 'new'), t('ref', 'codes')]);
    expect(matchesSelection(t('_ferry', 'cdc_position'), { include: ['*.*'], exclude: [], rename: {} })).toBe(false);
  });

  it('applies a leaf under the root columns and key, with its own names', () => {
    const leaf = leafSchema(schema, t('app', 'orders_2025'), t('dst', 'orders_2025'));
    expect(leaf).toMatchObject({ source: t('app', 'orders_2025'), target: t('dst', 'orders_2025'), primaryKey: ['id'], columns: schema.columns });
  });
});
