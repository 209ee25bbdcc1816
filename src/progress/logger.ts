/**
 * The process logger: JSON lines on stderr (stdout stays free for data and the summary), level from FERRY_LOG_LEVEL.
 * Secrets are removed in two layers: pino `redact` for keys that hold them wherever they sit in a logged object, and
 * `redactUrl` over message text and errors, because driver errors happily quote a connection string.
 */
import pino from 'pino';

/** Keys whose values are secrets, or may embed one (a URL with a password). */
export const SECRET_KEYS = ['password', 'secret', 'token', 'connectionString', 'url'] as const;
/** Wildcard depth for redact paths: config objects are nested (config.source.url), rarely deeper than this. */
const REDACT_DEPTH = 6;
const URL_KEYS = new Set(['url', 'connectionstring']);

/**
 * Replace the password in every URL (`scheme://user:password@host`) and every `password=` / `secret=` / `token=`
 * parameter (libpq keyword DSNs, query strings) of a text. Works on a bare URL or on free text that contains one.
 */
export function redactUrl(text: string): string {
  if (typeof text !== 'string' || text.length === 0) return text;
  // The userinfo ends at the last "@" of the URL token: an unencoded "@" inside a password must not leak its tail.
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)(\S*)@/gi, (whole, scheme: string, rest: string) => {
    const colon = rest.indexOf(':');
    const slash = rest.indexOf('/');
    // A ":" after the first "/" is a path or port, not a user:password separator.
    if (colon < 0 || (slash >= 0 && slash < colon)) return whole;
    return `${scheme}${rest.slice(0, colon)}:***@`;
  });
  out = out.replace(/\b((?:ssl)?password|secret|token)=('(?:[^'\\]|\\.)*'|[^\s&'"]+)/gi, '$1=***');
  return out;
}

function redactPaths(): string[] {
  const keys = new Set<string>();
  for (const k of SECRET_KEYS) for (const v of [k, k.toLowerCase(), k.toUpperCase()]) keys.add(v);
  const paths: string[] = [];
  for (const k of keys) {
    let p = k;
    for (let d = 0; d < REDACT_DEPTH; d++) {
      paths.push(p);
      p = `*.${p}`;
    }
  }
  return paths;
}

/** A URL keeps its user, host and database (what an operator needs to read a log); any other secret goes entirely. */
function censor(value: unknown, path: unknown[]): unknown {
  const key = String(path[path.length - 1] ?? '').toLowerCase();
  if (URL_KEYS.has(key) && typeof value === 'string') return redactUrl(value);
  return '[Redacted]';
}

export interface LoggerOptions {
  /** Overrides FERRY_LOG_LEVEL. */
  level?: string;
  name?: string;
  /** Where lines go; stderr (synchronously, so nothing is lost on exit) when absent. Tests pass a buffer. */
  destination?: pino.DestinationStream;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(opts: LoggerOptions = {}): pino.Logger {
  const level = (opts.level ?? process.env.FERRY_LOG_LEVEL ?? 'info').trim().toLowerCase() || 'info';
  if (!LEVELS.includes(level)) {
    // Failing loudly beats running a long migration with the wrong verbosity.
    throw new Error(`FERRY_LOG_LEVEL=${level} is not a log level (one of ${LEVELS.join(', ')})`);
  }
  const errSerializer = pino.stdSerializers.err;
  return pino(
    {
      name: opts.name ?? 'ferry',
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths(), censor },
      serializers: {
        err: (e: Error) => {
          const s = errSerializer(e);
          return { ...s, message: redactUrl(s.message), stack: redactUrl(s.stack) };
        },
      },
      hooks: {
        // Message strings are free text: scrub them, since redact only sees object keys.
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? redactUrl(a) : a)) as typeof args;
          method.apply(this, scrubbed);
        },
      },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
