/** Small middy middleware factories shared by the handlers. */
import type middy from '@middy/core';
import { createLogger, redactUrl } from '../../src/progress/logger.js';
import { FerryError } from '../../src/core/errors.js';
import { secretValues } from './context.js';

export const logger = createLogger({ name: 'ferry-lambda' });

/** Values that must never leave a function in an error: credentials of its environment and the database URLs. */
const SECRET_ENV = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'SST_KEY'];

/**
 * Error text made safe for the Step Functions history (anyone with states:DescribeExecution reads it): passwords in
 * URLs and `password=` parameters masked, and any literal secret value (the database URLs, their passwords, the
 * function's AWS credentials) replaced wherever it appears.
 */
export function redactError(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = redactUrl(text);
  const values = new Set<string>();
  for (const name of SECRET_ENV) if (process.env[name]) values.add(process.env[name]!);
  for (const v of secrets) {
    if (!v) continue;
    values.add(v);
    try {
      const password = decodeURIComponent(new URL(v).password);
      if (password) values.add(password);
    } catch {
      // not a URL: the whole value is masked anyway
    }
  }
  // Longest first, so a URL is masked whole before its password inside it.
  for (const v of [...values].filter((x) => x.length >= 4).sort((a, b) => b.length - a.length)) out = out.split(v).join('***');
  return out;
}

/**
 * Errors leave a Lambda as `{ errorType, errorMessage, trace }`, which Step Functions keeps as the failed state's
 * cause. So the error is replaced by one with the same name (Retry/Catch match on it), a redacted message (a
 * FerryError's hint appended) and no stack; the log line keeps the stack (the logger redacts it too).
 */
export function explainErrors(secrets: () => readonly (string | undefined)[] = secretValues): middy.MiddlewareObj {
  return {
    onError: async (request) => {
      const err = request.error;
      if (!err) return;
      logger.error({ err }, 'activity failed');
      const message = err instanceof FerryError && err.hint ? `${err.message} (what to do: ${err.hint})` : err.message;
      const safe = new Error(redactError(message, secrets()));
      safe.name = err.name;
      safe.stack = `${safe.name}: ${safe.message}`;
      request.error = safe;
    },
  };
}
