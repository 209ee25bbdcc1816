/**
 * Reading PostgreSQL's text forms without a server: COPY text rows, array literals, and JSON with its numbers kept
 * exactly. Pure functions; the PostgreSQL → MongoDB mapping (pg-to-mongo.ts) builds on them.
 */
import { Decimal128, Double, Int32, Long, type Document } from 'bson';

/** One line of `COPY ... TO STDOUT` text format (no trailing newline) into its fields; `\N` is NULL. */
export function parseCopyTextLine(line: string): (string | null)[] {
  return line.split('\t').map((f) => (f === '\\N' ? null : f.includes('\\') ? unescapeCopy(f) : f));
}

const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

function unescapeCopy(f: string): string {
  // Octal and hex escapes name bytes, not characters: collect bytes and decode once as UTF-8.
  const bytes: number[] = [];
  const push = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  for (let i = 0; i < f.length; i++) {
    const ch = f[i]!;
    if (ch !== '\\' || i + 1 >= f.length) {
      const cp = f.codePointAt(i)!;
      const s = String.fromCodePoint(cp);
      push(s);
      i += s.length - 1;
      continue;
    }
    const n = f[++i]!;
    if (SIMPLE[n] !== undefined) push(SIMPLE[n]);
    else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(f.slice(i))![0];
      bytes.push(parseInt(m, 8) & 0xff);
      i += m.length - 1;
    } else if (n === 'x' && /^[0-9a-fA-F]/.test(f[i + 1] ?? '')) {
      const m = /^[0-9a-fA-F]{1,2}/.exec(f.slice(i + 1))![0];
      bytes.push(parseInt(m, 16));
      i += m.length;
    } else push(n);
  }
  return Buffer.from(bytes).toString('utf8');
}

export type PgArray = (string | null | PgArray)[];

/**
 * A PostgreSQL array literal (`{1,NULL,"a b"}`, nested for several dimensions) into nested arrays of element texts.
 * `lowerBounds` is set when the literal starts with explicit bounds (`[0:2]={7,8,9}`): they do not fit a BSON array.
 * `delimiter` is `,` for every built-in type but box (`;`).
 */
export function parsePgArray(text: string, delimiter = ','): { elements: PgArray; lowerBounds: number[] | null } {
  let i = 0;
  let lowerBounds: number[] | null = null;
  if (text[0] === '[') {
    const eq = text.indexOf('=');
    lowerBounds = [...text.slice(0, eq).matchAll(/\[(-?\d+):-?\d+\]/g)].map((m) => Number(m[1]));
    i = eq + 1;
  }
  const parse = (): PgArray => {
    if (text[i] !== '{') throw new Error(`not a PostgreSQL array literal: ${text.slice(0, 80)}`);
    i++;
    const out: PgArray = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      while (text[i] === ' ') i++;
      if (text[i] === '{') out.push(parse());
      else if (text[i] === '"') {
        let s = '';
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          s += text[i++];
        }
        i++;
        out.push(s);
      } else {
        let s = '';
        let escaped = false;
        while (text[i] !== delimiter && text[i] !== '}') {
          if (text[i] === '\\') {
            i++;
            escaped = true;
          }
          s += text[i++];
        }
        out.push(!escaped && s.trim().toUpperCase() === 'NULL' ? null : s.trim());
      }
      while (text[i] === ' ') i++;
      if (text[i] === delimiter) {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      throw new Error(`malformed PostgreSQL array literal at ${i}: ${text.slice(0, 80)}`);
    }
  };
  return { elements: parse(), lowerBounds };
}

/** sign, significant digits (no leading/trailing zeros) and exponent of a decimal text: equal iff equal values. */
function decimalKey(t: string): string {
  const m = /^(-?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(t);
  if (!m) return t;
  const digits = (m[2] ?? '') + (m[3] ?? '');
  let exp = Number(m[4] ?? 0) - (m[3]?.length ?? 0);
  let d = digits.replace(/^0+/, '');
  if (d === '') return '0';
  const trailing = d.length - d.replace(/0+$/, '').length;
  d = d.slice(0, d.length - trailing);
  exp += trailing;
  return `${m[1]}${d}e${exp}`;
}

/**
 * A JSON number as the BSON number that holds it exactly: Int32, then Int64 for integers; a Double when the double
 * nearest to it prints back as the same value; otherwise Decimal128 (34 digits, exponent to ±6143); otherwise (more
 * digits than Decimal128 has) the number's text as a string, so that nothing is rounded silently.
 */
export function jsonNumberToBson(t: string): Int32 | Long | Double | Decimal128 | string {
  if (/^-?\d+$/.test(t) && t !== '-0') {
    const big = BigInt(t);
    if (big >= -2147483648n && big <= 2147483647n) return new Int32(Number(big));
    if (big >= -(2n ** 63n) && big < 2n ** 63n) return Long.fromBigInt(big);
  } else {
    const d = Number(t);
    if (Number.isFinite(d) && (decimalKey(t) === decimalKey(String(d)) || (d === 0 && decimalKey(t) === '0'))) {
      return new Double(t.startsWith('-') && d === 0 ? -0 : d);
    }
  }
  try {
    return Decimal128.fromString(t);
  } catch {
    return t;
  }
}

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** JSON text to BSON: objects to documents (field order kept, a repeated key's last value wins, as in jsonb). */
export function jsonToBson(text: string): unknown {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const str = (): string => {
    // JSON.parse of the exact string token: escapes (\u surrogate pairs included) are JSON's own.
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Document = {};
      ws();
      if (text[i] === '}') return i++, out;
      for (;;) {
        ws();
        const k = str();
        ws();
        i++; // :
        const v = value();
        // jsonb prints each key once; defineProperty keeps a key named `__proto__` a field (assignment would set
        // the prototype and lose it), and a repeated key of json text still ends as its last value.
        if (Object.hasOwn(out, k)) delete out[k];
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i++] === '}') return out;
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') return i++, out;
      for (;;) {
        out.push(value());
        ws();
        if (text[i++] === ']') return out;
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', i)) return (i += 4), true;
    if (text.startsWith('false', i)) return (i += 5), false;
    if (text.startsWith('null', i)) return (i += 4), null;
    NUMBER.lastIndex = i; // sticky: no copy of the rest of the text per number
    const m = NUMBER.exec(text);
    if (!m) throw new Error(`invalid JSON at ${i}: ${text.slice(i, i + 40)}`);
    i += m[0].length;
    return jsonNumberToBson(m[0]);
  };
  const v = value();
  ws();
  if (i !== text.length) throw new Error(`trailing characters in JSON at ${i}`);
  return v;
}
