/** Config parsing without databases: defaults, `${ENV}` interpolation, field paths in messages, YAML and JSON files. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, parseConfig } from '../src/config/load.js';
import { ConfigError } from '../src/core/errors.js';

const MIN = { source: { url: 'postgres://u:p@old:5432/shop' }, target: { host: 'new', database: 'shop' } };

/** The ConfigError a call throws (fails the test if it does not throw one). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

async function configErrorOf(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

/** The issue lines of an "… is invalid:" message. */
const issues = (e: Error) => e.message.split('\n').slice(1);

describe('parseConfig', () => {
  it('fills in the defaults', () => {
    const c = parseConfig(MIN, {});
    expect(c).toMatchObject({
      source: { url: 'postgres://u:p@old:5432/shop' },
      target: { host: 'new', database: 'shop' },
      include: ['*.*'],
      exclude: [],
      rename: {},
      mode: 'snapshot',
      workers: Math.max(1, cpus().length),
      rowsPerRange: 250_000,
      batchRows: 50_000,
      jobTimeBudgetSeconds: 600,
      maxAttempts: 5,
      state: { path: '.ferry/state.db' },
    });
    // No name: the flow id is derived from the endpoints. onExistingRows unset means `fail`.
    expect(c.name).toBeUndefined();
    expect(c.target.onExistingRows).toBeUndefined();
  });

  it('keeps what is given', () => {
    const c = parseConfig(
      {
        ...MIN,
        name: 'shop-to-new',
        target: { host: 'new', port: 6543, user: 'ferry', password: '', database: 'shop', ssl: 'require', onExistingRows: 'truncate' },
        include: ['shop.*', 'billing.invoices'],
        exclude: ['shop.tmp_*'],
        rename: { 'billing.invoices': 'shop.invoices' },
        workers: 3,
        rowsPerRange: 10,
        batchRows: 5,
        jobTimeBudgetSeconds: 0.5,
        maxAttempts: 1,
        state: { path: '/tmp/x.db' },
      },
      {},
    );
    expect(c).toMatchObject({
      name: 'shop-to-new',
      target: { port: 6543, password: '', ssl: 'require', onExistingRows: 'truncate' },
      include: ['shop.*', 'billing.invoices'],
      workers: 3,
      rowsPerRange: 10,
      jobTimeBudgetSeconds: 0.5,
      state: { path: '/tmp/x.db' },
    });
  });

  it('an empty state object gets the default path', () => {
    expect(parseConfig({ ...MIN, state: {} }, {}).state).toEqual({ path: '.ferry/state.db' });
  });

  describe('${ENV} interpolation', () => {
    it('replaces every ${NAME} in every string, nested in objects and arrays, from the given environment', () => {
      const c = parseConfig(
        {
          source: { url: 'postgres://ferry:${PW}@${HOST}:5432/${DB}' },
          target: { host: '${HOST}', port: '${PORT}', password: 'x${PW}y', database: 'd' },
          include: ['${SCHEMA}.*', 'public.t'],
          state: { path: '${HOME_DIR}/state.db' },
        },
        { PW: 'p@ss:w/rd', HOST: 'db.internal', DB: 'shop', PORT: '6543', SCHEMA: 'sales', HOME_DIR: '/home/f' },
      );
      expect(c.source.url).toBe('postgres://ferry:p@ss:w/rd@db.internal:5432/shop');
      expect(c.target).toEqual({ host: 'db.internal', port: 6543, password: 'xp@ss:w/rdy', database: 'd' });
      expect(c.include).toEqual(['sales.*', 'public.t']);
      expect(c.state.path).toBe('/home/f/state.db');
    });

    it('does not expand $NAME without braces, nor a ${…} that a value brings in, nor non-strings', () => {
      const c = parseConfig(
        { ...MIN, source: { url: 'postgres://u:$PW@h/${A}' }, workers: 2 },
        { PW: 'secret', A: '${PW}' },
      );
      expect(c.source.url).toBe('postgres://u:$PW@h/${PW}');
      expect(c.workers).toBe(2);
    });

    it('an empty variable is a value, not an unset one', () => {
      expect(parseConfig({ ...MIN, target: { host: 'h', password: '${EMPTY}' } }, { EMPTY: '' }).target.password).toBe('');
    });

    it('an unset variable names the field and the variable, with what to do', () => {
      const e = configError(() => parseConfig({ ...MIN, source: { url: 'postgres://u:${SOURCE_PW}@h/db' } }, {}));
      expect(e.message).toBe('source.url: environment variable SOURCE_PW is not set');
      expect(e.hint).toBe('export SOURCE_PW=... before running ferry');

      expect(configError(() => parseConfig({ ...MIN, include: ['a.b', '${S}.*'] }, {})).message).toBe(
        'include[1]: environment variable S is not set',
      );
      expect(configError(() => parseConfig({ ...MIN, rename: { 'a.b': '${T}.b' } }, {})).message).toBe(
        'rename.a.b: environment variable T is not set',
      );
    });

    it('reads process.env by default', () => {
      process.env.FERRY_CONFIG_TEST_HOST = 'from-process-env';
      try {
        expect(parseConfig({ ...MIN, target: { host: '${FERRY_CONFIG_TEST_HOST}' } }).target.host).toBe('from-process-env');
      } finally {
        delete process.env.FERRY_CONFIG_TEST_HOST;
      }
    });
  });

  describe('messages name the field path', () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['unknown top-level field', { ...MIN, wrokers: 4 }, /^ {2}- \(top level\): unknown field `wrokers`$/],
      ['unknown endpoint field', { ...MIN, source: { url: 'postgres://h/d', hots: 'x' } }, /^ {2}- source: unknown field `hots`$/],
      ['unknown state field', { ...MIN, state: { pth: 'x' } }, /^ {2}- state: unknown field `pth`$/],
      ['workers of the wrong type', { ...MIN, workers: 'four' }, /^ {2}- workers: .*expected number/],
      ['workers out of range', { ...MIN, workers: 0 }, /^ {2}- workers: .*>=\s*1/],
      ['workers not an integer', { ...MIN, workers: 1.5 }, /^ {2}- workers: .*int/i],
      ['a port that is not a number', { ...MIN, target: { host: 'h', port: 'abc' } }, /^ {2}- target\.port: .*expected number/],
      ['a port out of range', { ...MIN, target: { host: 'h', port: 70000 } }, /^ {2}- target\.port: .*65535/],
      ['an endpoint with neither url nor host', { ...MIN, source: { database: 'd' } }, /^ {2}- source: give either `url`/],
      ['a missing endpoint', { target: MIN.target }, /^ {2}- source: .*expected object/],
      ['onExistingRows not fail/truncate', { ...MIN, target: { host: 'h', onExistingRows: 'replace' } }, /^ {2}- target\.onExistingRows: .*"fail"\|"truncate"/],
      ['ssl of an unknown mode', { ...MIN, target: { host: 'h', ssl: 'prefer' } }, /^ {2}- target\.ssl: /],
      ['an include entry without schema', { ...MIN, include: ['public.a', 'orders'] }, /^ {2}- include\[1\]: expected `schema\.table`/],
      ['include not a list', { ...MIN, include: 'public.*' }, /^ {2}- include: .*expected array/],
      ['a rename target without schema', { ...MIN, rename: { 'a.b': 'c' } }, /^ {2}- rename\.a\.b: expected `schema\.table`/],
      ['an unknown mode', { ...MIN, mode: 'cdc' }, /^ {2}- mode: .*"snapshot"\|"snapshot\+cdc"/],
      ['a name with spaces', { ...MIN, name: 'my flow' }, /^ {2}- name: expected 1-64 letters, digits, `_` or `-`$/],
      ['a password of the wrong type', { ...MIN, target: { host: 'h', password: 1234 } }, /^ {2}- target\.password: .*expected string, received number/],
      ['maxAttempts too high', { ...MIN, maxAttempts: 1000 }, /^ {2}- maxAttempts: .*100/],
      ['a zero time budget', { ...MIN, jobTimeBudgetSeconds: 0 }, /^ {2}- jobTimeBudgetSeconds: .*>\s*0/],
    ];
    it.each(cases)('%s', (_what, raw, line) => {
      const e = configError(() => parseConfig(raw, {}, 'ferry.yaml'));
      expect(e.message.split('\n')[0]).toBe('ferry.yaml is invalid:');
      expect(issues(e)).toHaveLength(1);
      expect(issues(e)[0]).toMatch(line);
    });

    it('lists every problem, one per line', () => {
      const e = configError(() => parseConfig({ ...MIN, workers: 0, batchRows: 'x', target: { host: 'h', port: 0 }, extra: 1 }, {}));
      expect(e.message.split('\n')[0]).toBe('config is invalid:');
      expect(issues(e).map((l) => l.replace(/:.*/, ''))).toEqual(
        expect.arrayContaining(['  - target.port', '  - workers', '  - batchRows', '  - (top level)']),
      );
      expect(issues(e)).toHaveLength(4);
    });

    it('a config that is not an object is a top-level problem', () => {
      for (const raw of [null, [], 'source: x', 42]) {
        expect(issues(configError(() => parseConfig(raw, {})))[0]).toMatch(/^ {2}- \(top level\): .*expected object/);
      }
    });
  });
});

describe('loadConfigFile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads YAML, with comments, flow and block style, and ${ENV}', async () => {
    const path = file(
      'ferry.yaml',
      `# a comment
name: shop-to-new
source:
  url: postgres://ferry:\${SOURCE_PASSWORD}@old-db:5432/shop   # from the environment
target: { host: new-db, port: 5432, user: ferry, password: "\${TARGET_PASSWORD}", database: shop, onExistingRows: truncate }
include: ["shop.*", billing.invoices]
rename:
  "billing.invoices": "shop.invoices"
workers: 8
`,
    );
    const c = await loadConfigFile(path, { SOURCE_PASSWORD: 's3', TARGET_PASSWORD: 't#4 x' });
    expect(c).toMatchObject({
      name: 'shop-to-new',
      source: { url: 'postgres://ferry:s3@old-db:5432/shop' },
      target: { host: 'new-db', port: 5432, user: 'ferry', password: 't#4 x', database: 'shop', onExistingRows: 'truncate' },
      include: ['shop.*', 'billing.invoices'],
      rename: { 'billing.invoices': 'shop.invoices' },
      workers: 8,
      batchRows: 50_000,
    });
  });

  it('reads JSON', async () => {
    const path = file('ferry.json', JSON.stringify({ ...MIN, workers: 2, include: ['a.*'] }, null, 2));
    expect(await loadConfigFile(path, {})).toMatchObject({ ...MIN, workers: 2, include: ['a.*'], mode: 'snapshot' });
  });

  it('names the file in validation messages', async () => {
    const path = file('bad.yaml', 'source: { url: "postgres://h/d" }\ntarget: { host: h, port: nope }\n');
    const e = await configErrorOf(loadConfigFile(path, {}));
    expect(e.message).toBe(`${path} is invalid:\n  - target.port: Invalid input: expected number, received NaN`);
  });

  it('a YAML number where a string is expected is named (an unquoted numeric password)', async () => {
    const path = file('numeric-password.yaml', 'source: { url: "postgres://h/d" }\ntarget: { host: h, password: 012345 }\n');
    expect(issues(await configErrorOf(loadConfigFile(path, {})))).toEqual([expect.stringMatching(/^ {2}- target\.password: .*expected string, received number/)]);
  });

  it('a missing file, a directory, invalid YAML and an empty file say what is wrong with which file', async () => {
    const missing = join(dir, 'missing.yaml');
    expect((await configErrorOf(loadConfigFile(missing, {}))).message).toBe(`cannot read config file ${missing}: ENOENT`);
    expect((await configErrorOf(loadConfigFile(dir, {}))).message).toBe(`cannot read config file ${dir}: EISDIR`);

    const broken = file('broken.yaml', 'source:\n  url: "unterminated\n');
    expect((await configErrorOf(loadConfigFile(broken, {}))).message).toMatch(new RegExp(`^${broken} is not valid YAML or JSON: `));
    const badJson = file('broken.json', '{"source": {"url": "x"}, "target": {"host": "h"}');
    expect((await configErrorOf(loadConfigFile(badJson, {}))).message).toMatch(/is not valid YAML or JSON/);

    const empty = file('empty.yaml', '');
    const e = await configErrorOf(loadConfigFile(empty, {}));
    expect(e.message.split('\n')[0]).toBe(`${empty} is invalid:`);
    expect(issues(e)[0]).toMatch(/^ {2}- \(top level\): /);
  });

  it('an unset variable in a file names the field', async () => {
    const path = file('unset.yaml', 'source: { url: "postgres://u:${NOPE}@h/d" }\ntarget: { host: h }\n');
    const e = await configErrorOf(loadConfigFile(path, {}));
    expect(e.message).toBe('source.url: environment variable NOPE is not set');
  });
});
