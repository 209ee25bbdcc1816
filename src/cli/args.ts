/**
 * Strict argument parsing for every `ferry` command, on node:util `parseArgs` (strict mode): an unknown flag, a
 * missing value or an extra argument is a usage error (exit 2) that names the nearest valid flag or command.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'boolean' | 'string';
  short?: string;
  help: string;
  /** Shown after the flag in help, e.g. `N` in `--scale N`. */
  value?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional argument names, e.g. ['config.yaml']; a trailing `?` makes one optional. */
  positionals: string[];
  options: Record<string, OptionSpec>;
  /** More lines of help under the usage line. */
  details?: string;
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}

export interface Parsed {
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
  help: boolean;
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options = { ...spec.options, help: { type: 'boolean', short: 'h', help: 'show this help' } as OptionSpec };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, o.short ? { type: o.type, short: o.short } : { type: o.type }])),
    });
  } catch (err) {
    throw new UsageError(explainParseError(err, Object.keys(options)), spec.name);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { positionals: parsed.positionals, values, help: true };
  const required = spec.positionals.filter((p) => !p.endsWith('?')).length;
  const max = spec.positionals.length;
  if (parsed.positionals.length < required) {
    throw new UsageError(`\`ferry ${spec.name}\` needs <${spec.positionals[0]}>: give exactly one config file, e.g. \`ferry ${spec.name} ferry.yaml\``, spec.name);
  }
  if (parsed.positionals.length > max) {
    const extra = parsed.positionals.slice(max);
    const hint = extra.map((e) => suggest(e, Object.keys(options))).find(Boolean);
    throw new UsageError(
      `unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((e) => `\`${e}\``).join(' ')} for \`ferry ${spec.name}\`` +
        (hint ? ` (did you mean \`--${hint}\`?)` : ''),
      spec.name,
    );
  }
  return { positionals: parsed.positionals, values, help: false };
}

function explainParseError(err: unknown, known: string[]): string {
  const e = err as { code?: string; message?: string };
  const message = e.message ?? String(err);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const flag = /'([^']+)'/.exec(message)?.[1] ?? '';
    const near = suggest(flag.replace(/^-+/, '').split('=')[0]!, known);
    return `unknown option \`${flag}\`${near ? `: did you mean \`--${near}\`?` : ''}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /'(--?[^' ]+)/.exec(message)?.[1] ?? 'an option';
    return /argument missing/.test(message) ? `\`${flag}\` needs a value` : `\`${flag}\` takes no value`;
  }
  return message;
}

/** The nearest candidate by edit distance, when near enough to be a typo (`reapir` → `repair`). */
export function suggest(word: string, candidates: string[]): string | undefined {
  const w = word.replace(/^-+/, '').toLowerCase();
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = distance(w, c.toLowerCase());
    if (!best || d < best.d) best = { c, d };
  }
  return best && best.d <= Math.max(2, Math.floor(w.length / 3)) && best.d < w.length ? best.c : undefined;
}

/** Damerau-Levenshtein (optimal string alignment): a swapped pair of letters counts as one edit. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

export function commandHelp(spec: CommandSpec): string {
  const args = spec.positionals.map((p) => (p.endsWith('?') ? `[${p.slice(0, -1)}]` : `<${p}>`)).join(' ');
  const lines = [`ferry ${spec.name}${args ? ` ${args}` : ''}${Object.keys(spec.options).length ? ' [options]' : ''}`, '', `  ${spec.summary}`];
  if (spec.details) lines.push('', ...spec.details.split('\n').map((l) => `  ${l}`));
  const opts = Object.entries({ ...spec.options, help: { type: 'boolean', short: 'h', help: 'show this help' } as OptionSpec });
  const flag = ([k, o]: [string, OptionSpec]) => `${o.short ? `-${o.short}, ` : ''}--${k}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
  const w = Math.max(...opts.map((o) => flag(o).length));
  lines.push('', 'options:', ...opts.map((o) => `  ${flag(o).padEnd(w)}  ${o[1].help}`));
  return `${lines.join('\n')}\n`;
}

/** A number option: positive and finite, or a usage error naming the flag. */
export function positiveNumber(values: Parsed['values'], name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!(typeof raw === 'string' && raw.trim() !== '' && Number.isFinite(n) && n > 0)) {
    throw new UsageError(`\`--${name}\` takes a positive number, not \`${String(raw)}\``);
  }
  return n;
}
