import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/core/errors.js';
import { tableKey, type TableName } from '../src/core/model.js';
import type { Selection } from '../src/core/ports/source.js';
import { isSystemSchema, renameTable, selectTables } from '../src/core/selection.js';

const t = (key: string): TableName => {
  const dot = key.indexOf('.');
  return { schema: key.slice(0, dot), name: key.slice(dot + 1) };
};
const tables = (...keys: string[]) => keys.map(t);
const sel = (s: Partial<Selection>): Selection => ({ include: ['*.*'], exclude: [], rename: {}, ...s });
const pairs = (out: { source: TableName; target: TableName }[]) => out.map((o) => `${tableKey(o.source)} -> ${tableKey(o.target)}`);

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const CANDIDATES = tables(
  'public.orders',
  'public.Orders',
  'public.order_items',
  'public.customers',
  'public.notes',
  'sales.invoices',
  'sales.invoice_lines',
  'archive.orders_2023',
  'pg_catalog.pg_class',
  'information_schema.tables',
  'pg_toast.pg_toast_1',
  'pg_temp_3.scratch',
  '_ferry.progress',
);

describe('selectTables', () => {
  it('selects every user table by default, never system schemas or _ferry, sorted by code point', () => {
    const out = selectTables([...CANDIDATES].reverse(), sel({}));
    expect(pairs(out)).toEqual([
      'archive.orders_2023 -> archive.orders_2023',
      'public.Orders -> public.Orders',
      'public.customers -> public.customers',
      'public.notes -> public.notes',
      'public.order_items -> public.order_items',
      'public.orders -> public.orders',
      'sales.invoice_lines -> sales.invoice_lines',
      'sales.invoices -> sales.invoices',
    ]);
    for (const s of ['pg_catalog', 'information_schema', 'pg_toast', '_ferry', 'pg_temp_3']) expect(isSystemSchema(s)).toBe(true);
    expect(isSystemSchema('public')).toBe(false);
  });

  it('matches * and ? wildcards case-sensitively, and excludes', () => {
    expect(pairs(selectTables(CANDIDATES, sel({ include: ['public.order?'] })))).toEqual(['public.orders -> public.orders']);
    expect(pairs(selectTables(CANDIDATES, sel({ include: ['public.O*'] })))).toEqual(['public.Orders -> public.Orders']);
    const out = selectTables(CANDIDATES, sel({ include: ['public.*', 'sales.invoice*'], exclude: ['public.order*', 'sales.*_lines'] }));
    expect(pairs(out).map((p) => p.split(' ')[0])).toEqual(['public.Orders', 'public.customers', 'public.notes', 'sales.invoices']);
  });

  it('treats regular-expression characters in names literally', () => {
    const c = tables('odd.a+b', 'odd.aab', 'odd.a.b', 'odd.axb');
    expect(pairs(selectTables(c, sel({ include: ['odd.a+b'] })))).toEqual(['odd.a+b -> odd.a+b']);
    // The first dot separates schema and table; the table part may contain dots.
    expect(pairs(selectTables(c, sel({ include: ['odd.a.b'] })))).toEqual(['odd.a.b -> odd.a.b']);
  });

  it('renames tables and whole schemas; an exact rename beats a schema rename', () => {
    const out = selectTables(
      CANDIDATES,
      sel({
        include: ['public.orders', 'public.customers', 'sales.*'],
        rename: { 'sales.*': 'billing.*', 'sales.invoices': 'billing.bills', 'public.customers': 'crm.*' },
      }),
    );
    expect(pairs(out)).toEqual([
      'public.customers -> crm.customers',
      'public.orders -> public.orders',
      'sales.invoice_lines -> billing.invoice_lines',
      'sales.invoices -> billing.bills',
    ]);
    expect(renameTable(t('sales.seq'), { 'sales.*': 'billing.*' })).toEqual(t('billing.seq'));
    expect(renameTable(t('other.seq'), { 'sales.*': 'billing.*' })).toEqual(t('other.seq'));
  });

  it('names the include entry that matches nothing, with similar tables and a case hint', () => {
    const e = configError(() => selectTables(CANDIDATES, sel({ include: ['public.*', 'public.nots'] })));
    expect(e.message).toMatch(/^include\[1\] `public\.nots` matches no table in the source; tables there: public\.notes, /);
    expect(e.message).not.toContain('sales.');
    const e2 = configError(() => selectTables(CANDIDATES, sel({ include: ['public.CUSTOMERS'] })));
    expect(e2.hint).toContain('did you mean `public.customers`');
    const many = tables(...Array.from({ length: 30 }, (_, i) => `big.t${i}`));
    const e3 = configError(() => selectTables(many, sel({ include: ['big.x'] })));
    expect(e3.message).toContain('(and 20 more)');
    const e4 = configError(() => selectTables([t('pg_catalog.pg_class')], sel({})));
    expect(e4.message).toContain('include[0] `*.*` matches no table in the source');
  });

  it('refuses two tables renamed to the same target', () => {
    const e = configError(() =>
      selectTables(CANDIDATES, sel({ include: ['public.notes', 'sales.invoices'], rename: { 'sales.invoices': 'public.notes' } })),
    );
    expect(e.message).toBe('public.notes and sales.invoices would both be copied to public.notes');
    const e2 = configError(() => selectTables(CANDIDATES, sel({ include: ['public.*', 'archive.*'], rename: { 'archive.*': 'public.orders' } })));
    expect(e2.message).toContain('would both be copied to public.orders');
  });

  it('refuses unused, ambiguous and malformed renames, and renames into reserved schemas', () => {
    expect(configError(() => selectTables(CANDIDATES, sel({ rename: { 'public.custmers': 'crm.clients' } }))).message).toBe(
      'rename `public.custmers` matches no selected table',
    );
    // *.notes (literal table) is more specific than public.* (literal schema): no ambiguity.
    expect(pairs(selectTables(CANDIDATES, sel({ include: ['public.notes'], rename: { 'public.*': 'a.*', '*.notes': 'b.notes' } })))).toEqual([
      'public.notes -> b.notes',
    ]);
    const e = configError(() =>
      selectTables(CANDIDATES, sel({ include: ['public.notes'], rename: { 'public.n*': 'a.*', 'public.*s': 'b.*' } })),
    );
    expect(e.message).toMatch(/public\.notes matches renames `public\.n\*` and `public\.\*s`, which disagree/);
    expect(configError(() => selectTables(CANDIDATES, sel({ rename: { 'public.*': 'x.pre_*' } }))).message).toMatch(
      /may use `\*` only as a whole part/,
    );
    expect(configError(() => selectTables(CANDIDATES, sel({ rename: { 'public.*': '_ferry.*' } }))).message).toMatch(
      /reserved schema `_ferry`/,
    );
    expect(configError(() => selectTables(CANDIDATES, sel({ include: ['nodot'] }))).message).toMatch(/is not `schema.table`/);
  });

  it('refuses a selection that excludes everything, or includes nothing', () => {
    expect(configError(() => selectTables(CANDIDATES, sel({ include: [] }))).message).toMatch(/`include` is empty/);
    expect(configError(() => selectTables(CANDIDATES, sel({ include: ['sales.*'], exclude: ['sales.*'] }))).message).toMatch(
      /removes every table/,
    );
  });
});
