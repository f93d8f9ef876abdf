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

export type LineLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/**
 * One session's logger: its bindings (session id, protocol) become a pino child only when a
 * line is actually written. A child per connection costs an object and a redacted
 * serialisation of its bindings, which a session that logs nothing at the level set never uses.
 */
export class SessionLogger {
  readonly #parent: Logger;
  readonly #session: string;
  readonly #proto: string;
  #child: Logger | undefined;

  constructor(parent: Logger, session: string, proto: string) {
    this.#parent = parent;
    this.#session = session;
    this.#proto = proto;
  }

  trace(obj: object | string, msg?: string): void {
    this.#line('trace', obj, msg);
  }

  debug(obj: object | string, msg?: string): void {
    this.#line('debug', obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    this.#line('info', obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    this.#line('warn', obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    this.#line('error', obj, msg);
  }

  fatal(obj: object | string, msg?: string): void {
    this.#line('fatal', obj, msg);
  }

  #line(level: LineLevel, obj: object | string, msg: string | undefined): void {
    if (!this.#parent.isLevelEnabled(level)) return;
    this.#child ??= this.#parent.child({ session: this.#session, proto: this.#proto });
    if (msg === undefined) this.#child[level](obj);
    else this.#child[level](obj, msg);
  }
}
