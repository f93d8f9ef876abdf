/**
 * Errors that are bugs or operator problems carry a stable `code` for logs and tests.
 * Errors a client may see never carry internal text: front-ends map outcomes to fixed replies.
 */
export type PortierErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_FILE'
  | 'TLS_CONFIG'
  | 'PASSDB_CONFIG'
  | 'PASSDB_TEMPFAIL'
  | 'LISTEN_FAILED'
  | 'INTERNAL';

export class PortierError extends Error {
  readonly code: PortierErrorCode;

  constructor(code: PortierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortierError';
    this.code = code;
  }
}

/** A configuration problem, already formatted as `file:line: key.path: message` lines. */
export class ConfigError extends PortierError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super('CONFIG_INVALID', problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Log-safe text of any thrown value (no stack unless it is a bug). */
export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
