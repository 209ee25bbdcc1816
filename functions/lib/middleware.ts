/** Small middy middleware factories shared by the handlers. */
import type middy from '@middy/core';
import { createLogger } from '../../src/progress/logger.js';
import { FerryError } from '../../src/core/errors.js';

export const logger = createLogger({ name: 'ferry-lambda' });

/**
 * Errors leave a Lambda as `{ errorType, errorMessage }`, which Step Functions shows as the failed state's cause:
 * a FerryError keeps its message and hint; the log line carries the stack (secrets are redacted by the logger).
 */
export function explainErrors(): middy.MiddlewareObj {
  return {
    onError: async (request) => {
      const err = request.error;
      logger.error({ err }, 'activity failed');
      if (err instanceof FerryError && err.hint) err.message = `${err.message} (what to do: ${err.hint})`;
    },
  };
}
