/**
 * A Redis passdb: one key per user (`key: user:%u`), read as a hash (HGETALL) or as a JSON
 * object in a string value (`value_format: json`, the form Dovecot's dict passdb reads).
 * A missing key is an unknown user; Redis away or slow is a temporary failure, answered within
 * `query_timeout` (no offline queue), and the client reconnects by itself.
 */
import type { Redis } from 'ioredis';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { requestVars } from './passwd-file.js';
import { closeRedis, createRedis, parseRedisConnect, whenReady } from './redis-client.js';
import { fieldsFromRecord } from './store-fields.js';
import type { AuthRequest, Passdb, PassdbLookup } from './types.js';
import { expandTokens, parseTemplate, TemplateError, type TemplateToken, type VarName } from './vars.js';

export interface RedisPassdbOptions {
  readonly name: string;
  readonly connect: string;
  readonly key: string;
  readonly valueFormat: 'hash' | 'json';
  readonly defaultScheme: string;
  readonly queryTimeoutMs: number;
  readonly log: Logger;
}

export class RedisPassdb implements Passdb {
  readonly name: string;
  readonly driver = 'redis';
  readonly templateVars: ReadonlySet<VarName>;
  readonly defaultScheme: string;
  readonly #key: TemplateToken[];
  readonly #format: 'hash' | 'json';
  readonly #timeoutMs: number;
  readonly #client: Redis;
  readonly #log: Logger;

  constructor(opts: RedisPassdbOptions) {
    this.name = opts.name;
    this.defaultScheme = opts.defaultScheme;
    this.#format = opts.valueFormat;
    this.#timeoutMs = opts.queryTimeoutMs;
    this.#log = opts.log;
    try {
      this.#key = parseTemplate(opts.key);
    } catch (err) {
      throw new PortierError('PASSDB_CONFIG', `${opts.name}: key: ${err instanceof TemplateError ? err.message : errorText(err)}`);
    }
    this.templateVars = new Set(this.#key.flatMap((t) => (t.kind === 'var' ? [t.name] : [])));
    this.#client = createRedis(parseRedisConnect(opts.connect), { name: `passdb ${opts.name}`, commandTimeoutMs: opts.queryTimeoutMs, log: opts.log });
  }

  async lookup(req: AuthRequest): Promise<PassdbLookup> {
    const key = expandTokens(this.#key, requestVars(req));
    if (!(await whenReady(this.#client, this.#timeoutMs))) return { kind: 'tempfail', reason: `${this.name}: redis unavailable` };
    let record: Record<string, unknown>;
    try {
      if (this.#format === 'hash') {
        record = await this.#client.hgetall(key);
        if (Object.keys(record).length === 0) return { kind: 'unknown' };
      } else {
        const text = await this.#client.get(key);
        if (text === null) return { kind: 'unknown' };
        const parsed = parseJsonObject(text);
        if (parsed === null) {
          this.#log.error({ passdb: this.name, user: req.user }, 'redis passdb: the value is not a JSON object');
          return { kind: 'tempfail', reason: `${this.name}: malformed value` };
        }
        record = parsed;
      }
    } catch (err) {
      // WRONGTYPE and friends are configuration errors; timeouts and resets are outages.
      this.#log.error({ passdb: this.name, err: errorText(err) }, 'redis passdb: lookup failed');
      return { kind: 'tempfail', reason: `${this.name}: redis error` };
    }
    return { kind: 'found', fields: fieldsFromRecord(record, this.defaultScheme) };
  }

  async close(): Promise<void> {
    await closeRedis(this.#client);
  }
}

function parseJsonObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
