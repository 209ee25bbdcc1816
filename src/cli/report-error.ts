import { FerryError } from '../core/errors.js';
import { mongoEndpointError } from './mongo-errors.js';

/** A FerryError is the user's to act on: message and hint, no stack. Anything else is our bug: full stack. */
export function reportError(err: unknown): number {
  // A MongoDB driver error that reached here unnamed (no role known): still the user's to act on.
  err = err instanceof Error && err.name.startsWith('Mongo') ? mongoEndpointError(err, 'endpoint' as 'source') : err;
  if (err instanceof FerryError) {
    process.stderr.write(`ferry: error: ${err.message}\n${err.hint ? `  what to do: ${err.hint}\n` : ''}`);
  } else {
    process.stderr.write(`ferry: unexpected error (please report it): ${err instanceof Error ? err.stack : String(err)}\n`);
  }
  return 1;
}
