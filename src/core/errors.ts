/**
 * Errors a user can act on. The CLI prints `message` and exits non-zero without a stack trace; anything else is a
 * bug and is printed with its stack.
 */
export class FerryError extends Error {
  constructor(
    message: string,
    /** What the user should do about it. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad config or bad selection: names the field path, table or column. */
export class ConfigError extends FerryError {}

/** A database or service could not be reached or refused us (wrong password, unknown host). */
export class ConnectionError extends FerryError {}

/** The source or target cannot take part as configured (type the target lacks, target not empty, no wal_level). */
export class PreflightError extends FerryError {}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The target refused a change Ferry applied while streaming (a constraint, a type, a permission): names the table,
 * the operation, the key and the source position. `sqlstate` is the database's own error code, for whoever decides
 * whether to retry (a refused change is refused again: it is not a connection blip).
 */
export class ApplyError extends FerryError {
  constructor(
    message: string,
    hint: string,
    readonly table: string,
    readonly op: string,
    readonly sqlstate?: string,
  ) {
    super(message, hint);
  }
}
