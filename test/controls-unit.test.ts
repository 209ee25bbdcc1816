/** Pure parts of the table controls and throughput limits: token bucket (scripted clock), checks, row mapping. */
import { describe, expect, it } from 'vitest';
import { mapChange, sqlIdentifiers, targetView, unmapImage } from '../src/core/cdc/column-map.js';
import { ConfigError } from '../src/core/errors.js';
import type { TableSchema } from '../src/core/model.js';
import { assertTableControlsMatch, resolveTableControls } from '../src/core/selection.js';
import { TokenBucket, type Clock } from '../src/core/throttle.js';
import { parseConfig } from '../src/config/load.js';

/** A clock that only moves when a sleeper is woken: time advances exactly by what the bucket asked for. */
function scriptedClock(): Clock & { t: number; sleeps: number[] } {
  const c = {
    t: 0,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

describe('token bucket', () => {
  it('lets a burst through at once, then paces at the rate', async () => {
    const clock = scriptedClock();
    const b = new TokenBucket(100, { burst: 10, clock });
    await b.take(10);
    expect(clock.t).toBe(0);
    await b.take(10);
    expect(clock.t).toBe(100); // 10 tokens at 100/s
    for (let i = 0; i < 10; i++) await b.take(10);
    expect(clock.t).toBe(1100);
  });

  it('charges a take bigger than the burst as debt paid by the next takers', async () => {
    const clock = scriptedClock();
    const b = new TokenBucket(1000, { burst: 100, clock });
    await b.take(5000); // waits for nothing (the burst is there), owes 4900
    expect(clock.t).toBe(0);
    expect(b.available()).toBe(-4900);
    await b.take(1);
    // 4901 tokens to earn back at 1000/s before 1 is there.
    expect(clock.t).toBeGreaterThanOrEqual(4901);
    expect(clock.t).toBeLessThan(4910);
  });

  it('serves concurrent takers in order, together never above the rate', async () => {
    const clock = scriptedClock();
    const b = new TokenBucket(50, { burst: 5, clock });
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3].map(async (w) => {
      for (let i = 0; i < 5; i++) {
        await b.take(5);
        order.push(w);
      }
    }));
    // 20 takes of 5 = 100 tokens, 5 of them the initial burst: at least 95 / 50 s.
    expect(clock.t).toBeGreaterThanOrEqual(1900);
    expect(order.slice(0, 4).sort()).toEqual([0, 1, 2, 3]);
  });

  it('refills while idle, up to the burst only', async () => {
    const clock = scriptedClock();
    const b = new TokenBucket(10, { burst: 3, clock });
    clock.t += 60_000;
    expect(b.available()).toBe(3);
    expect(() => new TokenBucket(0)).toThrow(/positive rate/);
  });
});

const orders = { schema: 'public', name: 'orders' };
const cols = [{ name: 'id' }, { name: 'region' }, { name: 'secret' }, { name: 'note' }, { name: 'total', generated: 'x' }];

describe('table controls', () => {
  it('resolves kept columns and renames', () => {
    const r = resolveTableControls(orders, cols, ['id'], { excludeColumns: ['secret'], renameColumns: { note: 'remark', id: 'id' }, where: " region = 'eu' " });
    expect(r).toEqual({ kept: ['id', 'region', 'note', 'total'], excluded: ['secret'], rename: { note: 'remark' }, where: "region = 'eu'" });
  });

  it('names the table and the column of every mistake', () => {
    const bad = (cfg: Parameters<typeof resolveTableControls>[3], re: RegExp) =>
      expect(() => resolveTableControls(orders, cols, ['id'], cfg)).toThrow(re);
    bad({ excludeColumns: ['nope'] }, /tables\."public\.orders"\.excludeColumns: public\.orders has no column `nope`/);
    bad({ excludeColumns: ['id'] }, /`id` is part of the primary key of public\.orders/);
    bad({ renameColumns: { nope: 'x' } }, /renameColumns: public\.orders has no column `nope`/);
    bad({ renameColumns: { note: 'region' } }, /`note` -> `region` clashes with the column `region`/);
    bad({ renameColumns: { note: 'x', secret: 'x' } }, /`note` and `secret` would both become `x`/);
    bad({ excludeColumns: ['note'], renameColumns: { note: 'x' } }, /`note` is also in excludeColumns/);
    bad({ where: '   ' }, /where is empty/);
    bad({ where: "true; DROP TABLE x" }, /without `;`/);
    expect(() => resolveTableControls(orders, cols, ['id'], { where: "note = 'a;b'" })).not.toThrow();
    expect(() => assertTableControlsMatch([orders], { include: [], exclude: [], rename: {}, tables: { 'public.order': {} } })).toThrow(
      /tables `public\.order` names no selected table/,
    );
    expect(() => assertTableControlsMatch([orders], { include: [], exclude: [], rename: {}, tables: { 'public.*': {} } })).toThrow(ConfigError);
  });

  it('is part of the config, camelCase like the rest', () => {
    const c = parseConfig({
      source: { url: 'postgres://a@h/d' },
      target: { url: 'postgres://a@h/e' },
      tables: { 'public.orders': { excludeColumns: ['secret'], renameColumns: { note: 'remark' }, where: "region = 'eu'" } },
      limits: { snapshotRowsPerSecond: 1000, applyChangesPerSecond: '50' },
    });
    expect(c.tables['public.orders']!.renameColumns).toEqual({ note: 'remark' });
    expect(c.limits).toEqual({ snapshotRowsPerSecond: 1000, applyChangesPerSecond: 50 });
    expect(() => parseConfig({ source: { url: 'postgres://a@h/d' }, target: { url: 'postgres://a@h/e' }, tables: { 'public.orders': { exclude: [] } } })).toThrow(
      /tables\.public\.orders: unknown field `exclude`/,
    );
  });
});

describe('row mapping', () => {
  const t: TableSchema = {
    source: orders,
    target: orders,
    columns: [
      { name: 'id', type: 'integer', nullable: false },
      { name: 'note', type: 'text', nullable: true },
    ],
    primaryKey: ['id'],
    estimatedRows: 0,
    estimatedBytes: 0,
    extra: null,
    controls: { excluded: ['secret'], rename: { id: 'order_id', note: 'remark' }, published: { columns: false, where: false } },
  };

  it('drops excluded columns and renames, in every image', () => {
    const c = t.controls!;
    expect(mapChange(c, { op: 'insert', table: 'public.orders', row: { id: '1', note: 'n', secret: 's' } })).toEqual({
      op: 'insert',
      table: 'public.orders',
      row: { order_id: '1', remark: 'n' },
    });
    expect(mapChange(c, { op: 'update', table: 'public.orders', row: { id: '2' }, old: { id: '1', secret: 's' } })).toEqual({
      op: 'update',
      table: 'public.orders',
      row: { order_id: '2' },
      old: { order_id: '1' },
    });
    expect(unmapImage(c, { order_id: '7' })).toEqual({ id: '7' });
    const v = targetView(t);
    expect(v.columns.map((x) => x.name)).toEqual(['order_id', 'remark']);
    expect(v.primaryKey).toEqual(['order_id']);
    expect(v.controls).toBeUndefined();
  });

  it('finds the identifiers an SQL text uses, not those in its literals', () => {
    expect([...sqlIdentifiers(`region = 'eu' AND "Mixed" > 3 AND E'it''s \\' x' <> note AND $$y$$ = z`)].sort()).toEqual(
      ['Mixed', 'and', 'note', 'region', 'z'].sort(),
    );
    expect([...sqlIdentifiers('btree (lower(email)) INCLUDE (a1) WHERE (n > 1.5e3)')]).toEqual(['btree', 'lower', 'email', 'include', 'a1', 'where', 'n']);
  });
});
