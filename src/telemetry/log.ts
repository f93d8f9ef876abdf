/**
 * pino JSON-lines logging. Secrets are kept out by construction (credentials are never put
 * into log objects); the redact list below is the safety net for anything that slips through.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names whose values are always replaced, at any depth we know of. */
const REDACT_KEYS = ['password', 'pass', 'master_pass', 'master_password', 'sasl', 'ssl_key_password', 'secret', 'token', 'authorization', 'connect'];

const REDACT_PATHS = REDACT_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export interface LogOptions {
  readonly level: LevelWithSilent;
  readonly instance: string;
  /** Where lines go; default stdout. Tests pass a stream to read the lines back. */
  readonly destination?: DestinationStream;
}

export function createLogger(opts: LogOptions): Logger {
  return pino(
    {
      level: opts.level,
      base: { instance: opts.instance, pid: process.pid },
      messageKey: 'msg',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 }),
  );
}

/** A logger that drops everything (unit tests, CLI verbs that print their own output). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
