/** The strict command line: every mistake is a usage error (exit 2) naming the nearest valid choice. */
import { describe, expect, it } from 'vitest';
import { parseCommand, suggest, UsageError } from '../src/cli/args.js';
import { COMMANDS } from '../src/cli/main.js';
import { ferry, REAL_BIN, writeConfig } from './support/ferry-cli.js';

describe('argument parsing', () => {
  it('suggests the nearest flag or command for a typo', () => {
    expect(suggest('reapir', ['repair', 'json', 'help'])).toBe('repair');
    expect(suggest('jsno', ['repair', 'json', 'help'])).toBe('json');
    expect(suggest('verfy', Object.keys(COMMANDS))).toBe('verify');
    expect(suggest('zzzzzz', ['repair', 'json'])).toBeUndefined();
  });

  it('rejects unknown flags, missing values and extra arguments', () => {
    const verify = COMMANDS.verify!;
    expect(() => parseCommand(verify, ['f.yaml', '--reapir'])).toThrow(/unknown option `--reapir`: did you mean `--repair`\?/);
    expect(() => parseCommand(verify, ['f.yaml', 'g.yaml'])).toThrow(UsageError);
    expect(() => parseCommand(verify, [])).toThrow(/needs <config.yaml>: give exactly one config file/);
    expect(() => parseCommand(COMMANDS.ui!, ['f.yaml', '--port'])).toThrow(/`--port` needs a value/);
    expect(() => parseCommand(verify, ['f.yaml', '--repair=yes'])).toThrow(/takes no value/);
    expect(parseCommand(verify, ['f.yaml', '--repair', '--json'])).toMatchObject({ positionals: ['f.yaml'], values: { repair: true, json: true } });
  });
});

// The first two through bin/ferry.js itself (tsx): the binary users run; the rest through the tests' build of it.
describe('the ferry binary', () => {
  it('refuses `verify --reapir` instead of running verify without repair', async () => {
    const r = await ferry(['verify', 'ferry.yaml', '--reapir'], {}, REAL_BIN);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean `--repair`?');
    expect(r.stderr).toContain('ferry verify --help');
  });

  it('has --version, --help per command, and suggests commands', async () => {
    const [version, help, unknown, bare] = await Promise.all([
      ferry(['--version'], {}, REAL_BIN),
      ferry(['reset', '--help'], {}, REAL_BIN),
      ferry(['verfy', 'x.yaml'], {}, REAL_BIN),
      ferry([], {}, REAL_BIN),
    ]);
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^ferry \d+\.\d+\.\d+/);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ferry reset <config.yaml>');
    expect(help.stdout).toContain('--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('did you mean `ferry verify`?');
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('exit codes');
  });

  it('parses `ferry aws` subcommands as strictly as the others', async () => {
    const [typo, sub, help, ui] = await Promise.all([
      ferry(['aws', 'stop', 'x.yaml', '--state-tabel', 't']),
      ferry(['aws', 'stpo', 'x.yaml']),
      ferry(['aws', 'ui', '--help']),
      ferry(['aws', 'ui', 'x.yaml', '--port', 'http']),
    ]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean `--state-table`?');
    expect(typo.stderr).toContain('ferry aws stop --help');
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain('did you mean `ferry aws stop`?');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('ferry aws ui <config.yaml>');
    expect(help.stdout).toContain('--state-table NAME');
    expect(ui.code).toBe(2);
    expect(ui.stderr).toContain('`--port` takes a port number');
  });

  it('takes `--scale` only as a positive number', async () => {
    const r = await ferry(['demo', '--scale', 'big']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('`--scale` takes a positive number');
  });

  it('refuses `reset` without a terminal and without --yes, changing nothing', async () => {
    const config = writeConfig({ source: { url: 'postgres://u@127.0.0.1:1/x' }, target: { url: 'postgres://u@127.0.0.1:1/y' } });
    const r = await ferry(['reset', config]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('needs a confirmation');
    expect(r.stderr).toContain('--yes');
  });
});

describe('quoted names in include, exclude and rename', () => {
  it('matches a part in double quotes literally: dots, wildcards and doubled quotes', async () => {
    const { selectTables, splitQualifiedName } = await import('../src/core/selection.js');
    const tables = [
      { schema: 'app', name: 'odd.name "quoted"' },
      { schema: 'app', name: 'odd' },
      { schema: 'my.schema', name: 'a*b' },
      { schema: 'my.schema', name: 'ab' },
    ];
    expect(splitQualifiedName('app."odd.name ""quoted"""')).toEqual([{ text: 'app', quoted: false }, { text: 'odd.name "quoted"', quoted: true }]);
    expect(splitQualifiedName('a.b."c"')).toBeUndefined();
    expect(splitQualifiedName('app."unterminated')).toBeUndefined();
    const pick = (include: string[], rename: Record<string, string> = {}) =>
      selectTables(tables, { include, exclude: [], rename }).map((t) => `${t.source.schema}|${t.source.name} -> ${t.target.schema}|${t.target.name}`);
    expect(pick(['app."odd.name ""quoted"""'])).toEqual(['app|odd.name "quoted" -> app|odd.name "quoted"']);
    expect(pick(['"my.schema"."a*b"'])).toEqual(['my.schema|a*b -> my.schema|a*b']);
    expect(pick(['"my.schema".*'])).toHaveLength(2);
    expect(pick(['"my.schema"."a*b"'], { '"my.schema".*': 'plain.*' })).toEqual(['my.schema|a*b -> plain|a*b']);
    expect(pick(['app."odd.name ""quoted"""'], { 'app."odd.name ""quoted"""': 'app."odd.name"' })).toEqual(['app|odd.name "quoted" -> app|odd.name']);
  });

  it('accepts quoted patterns in the config and explains the syntax when one is malformed', async () => {
    const { parseConfig } = await import('../src/config/load.js');
    const base = { source: { url: 'postgres://u@h/d' }, target: { url: 'postgres://u@h/e' } };
    expect(parseConfig({ ...base, include: ['app."odd.name"'] }).include).toEqual(['app."odd.name"']);
    expect(() => parseConfig({ ...base, include: ['app.odd.name'] })).toThrow(/include\[0\]: expected `schema.table`.*quote a part/);
  });
});
