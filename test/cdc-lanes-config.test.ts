/** Config keys of the apply engine: cdc.consistency, cdc.lanes, cdc.commitChanges, cdc.maxStreamedTransactions. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/core/errors.js';
import { streamerConnections } from '../src/core/cdc/streamer.js';

const MIN = { source: { url: 'postgres://u:p@old:5432/shop' }, target: { host: 'new', database: 'shop' } };

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, {}, 'ferry.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message.split('\n').slice(1);
  }
  throw new Error('expected a ConfigError');
}

describe('cdc apply config', () => {
  it('defaults: one lane, whole transactions, four streamed transactions (today’s behaviour)', () => {
    const c = parseConfig(MIN, {});
    expect(c.cdc).toMatchObject({ batchMs: 500, consistency: 'transaction', maxStreamedTransactions: 4 });
    expect(c.cdc.lanes).toBeUndefined();
    expect(streamerConnections(c.cdc)).toBe(1 + 4 + 1);
  });

  it('consistency table with lanes; target connections follow', () => {
    const c = parseConfig({ ...MIN, cdc: { consistency: 'table', lanes: 8, commitChanges: 20000, maxStreamedTransactions: 2 } }, {});
    expect(c.cdc).toMatchObject({ consistency: 'table', lanes: 8, commitChanges: 20000 });
    expect(streamerConnections(c.cdc)).toBe(8 + 2 + 1);
    expect(streamerConnections({ consistency: 'table' })).toBe(4 + 4 + 1);
  });

  it.each([
    ['lanes without consistency table', { lanes: 4 }, /^ {2}- cdc\.lanes: several lanes need `consistency: table`/],
    ['an unknown consistency', { consistency: 'row' }, /^ {2}- cdc\.consistency: .*"transaction"\|"table"/],
    ['zero lanes', { consistency: 'table', lanes: 0 }, /^ {2}- cdc\.lanes: .*>=\s*1/],
    ['too many lanes', { consistency: 'table', lanes: 1000 }, /^ {2}- cdc\.lanes: .*64/],
    ['zero streamed transactions', { maxStreamedTransactions: 0 }, /^ {2}- cdc\.maxStreamedTransactions: /],
  ])('%s is refused with a clear line', (_what, cdc, line) => {
    const p = problems({ ...MIN, cdc });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(line);
  });

  it('one lane under transaction consistency is accepted (the same as the default)', () => {
    expect(parseConfig({ ...MIN, cdc: { lanes: 1 } }, {}).cdc.lanes).toBe(1);
  });
});
