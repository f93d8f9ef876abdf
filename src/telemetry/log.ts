/**
 * pino JSON-lines logging. Secrets are kept out by construction (credentials are never put
 * into log objects); the redact list below is the safety net for anything that slips through.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Field names whose values are always replaced, at the top of a line and two levels below. */
const REDACT_KEYS: ReadonlySet<string> = new Set(['password', 'pass', 'master_pass', 'master_password', 'sasl', 'ssl_key_password', 'secret', 'token', 'authorization', 'connect']);
const CENSOR = '[redacted]';
const censor = (): string => CENSOR;
const CENSOR_SERIALIZERS = Object.fromEntries([...REDACT_KEYS].map((k) => [k, censor]));
/** Levels below the line's own keys that are searched: `k`, `*.k` and `*.*.k`. */
const REDACT_DEPTH = 2;

/**
 * The safety net behind "credentials are never put into log objects": the values of the keys
 * above, in the line's object or in objects and arrays up to two levels down, become
 * `[redacted]` (in child bindings: at their top level). Nothing is copied unless something
 * matched (then only the objects on the way to it, as plain objects; an Error as its type,
 * message, stack and own fields), and the caller's object is never changed.
 *
 * This replaces pino's `redact` option, which for these 30 paths (10 keys at 3 depths, two of
 * them wildcards) cost about 75 µs per line in @pinojs/redact 0.4 (pino 10): two lines per
 * login made redaction one of the largest costs of a login at info level (docs/performance.md).
 */
export function redactSecrets<T extends object>(obj: T): T {
  return redactIn(obj, 0) as T;
}

function redactIn(obj: object, depth: number): object {
  let copy: Record<string, unknown> | undefined;
  const src = obj as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const value = src[key];
    let next = value;
    if (REDACT_KEYS.has(key)) {
      if (value !== undefined) next = CENSOR;
    } else if (depth < REDACT_DEPTH && typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
      next = redactIn(value, depth + 1);
    }
    if (next !== value) {
      copy ??= shallowCopy(obj);
      copy[key] = next;
    }
  }
  return copy ?? obj;
}

/** An array as an array, an Error as pino's error serializer would show it, else a plain object. */
function shallowCopy(obj: object): Record<string, unknown> {
  if (Array.isArray(obj)) return [...(obj as unknown[])] as unknown as Record<string, unknown>;
  if (obj instanceof Error) return { ...obj, type: obj.name, message: obj.message, stack: obj.stack };
  return { ...obj };
}

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
      formatters: { level: (label) => ({ level: label }), bindings: redactSecrets, log: redactSecrets },
      // pino gives child bindings no formatter; a serializer per key reaches them (top level).
      serializers: CENSOR_SERIALIZERS,
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

  /** Whether a line at `level` would be written: check it before building a costly object. */
  enabled(level: LineLevel): boolean {
    return this.#parent.isLevelEnabled(level);
  }

  #line(level: LineLevel, obj: object | string, msg: string | undefined): void {
    if (!this.#parent.isLevelEnabled(level)) return;
    this.#child ??= this.#parent.child({ session: this.#session, proto: this.#proto });
    if (msg === undefined) this.#child[level](obj);
    else this.#child[level](obj, msg);
  }
}
