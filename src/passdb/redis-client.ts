/**
 * One way to talk to Redis for the passdb and the shared penalty: commands fail fast while the
 * server is away (no offline queue that grows without bound), the client reconnects on its own,
 * and the connection details are logged without the password.
 */
import { Redis, type RedisOptions as AllRedisOptions } from 'ioredis';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';

/** ioredis options without RESP3 reply mapping (its typing does not fit exactOptionalPropertyTypes). */
type RedisOptions = Omit<AllRedisOptions, 'replyMapping'>;

export interface RedisTarget {
  /** A redis:// or rediss:// URL for ioredis, or explicit options (Dovecot's dict form). */
  readonly url?: string;
  readonly options: RedisOptions;
  /** host:port/db for logs (never the password). */
  readonly label: string;
}

/**
 * `redis://[user:password@]host[:port][/db]`, `rediss://...` (TLS), or Dovecot's dict URI
 * `redis:host=H:port=P[:db=N][:password=S]` (the form `dict { uri = ... }` uses).
 */
export function parseRedisConnect(text: string): RedisTarget {
  const value = text.trim();
  if (/^rediss?:\/\//i.test(value)) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new PortierError('PASSDB_CONFIG', 'redis connect: not a valid redis:// URL');
    }
    const db = url.pathname.replace(/^\//, '') || '0';
    if (!/^\d+$/.test(db)) throw new PortierError('PASSDB_CONFIG', `redis connect: database "${db}" is not a number`);
    return { url: value, options: {}, label: `${url.hostname}:${url.port || '6379'}/${db}` };
  }
  if (/^redis:/i.test(value)) {
    const options: RedisOptions = {};
    for (const part of value.slice(6).split(':')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const key = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      if (key === 'host') options.host = v;
      else if (key === 'port' && /^\d+$/.test(v)) options.port = Number(v);
      else if (key === 'db' && /^\d+$/.test(v)) options.db = Number(v);
      else if (key === 'password') options.password = v;
      else if (key === 'timeout_msecs' && /^\d+$/.test(v)) options.connectTimeout = Number(v);
      else throw new PortierError('PASSDB_CONFIG', `redis connect: unsupported parameter "${key}"`);
    }
    return { options, label: `${options.host ?? '127.0.0.1'}:${options.port ?? 6379}/${options.db ?? 0}` };
  }
  throw new PortierError('PASSDB_CONFIG', 'redis connect: expected redis://host:port[/db] or redis:host=...:port=...');
}

export interface SharedRedisOptions {
  readonly name: string;
  /** Bound for every command; a slower answer is a temporary failure. */
  readonly commandTimeoutMs: number;
  readonly log: Logger;
}

/**
 * A client that never queues commands while disconnected (`enableOfflineQueue: false`): callers
 * wait for `ready` with their own bound (`whenReady`) and otherwise fail at once.
 */
export function createRedis(target: RedisTarget, opts: SharedRedisOptions): Redis {
  const options: RedisOptions = {
    ...target.options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: opts.commandTimeoutMs,
    connectTimeout: target.options.connectTimeout ?? Math.max(1000, opts.commandTimeoutMs),
    // Reconnect forever, at most every 1 s, so recovery after an outage is quick.
    retryStrategy: (times) => Math.min(times * 100, 1000),
    lazyConnect: false,
  };
  const client = target.url === undefined ? new Redis(options) : new Redis(target.url, options);
  let down = false;
  client.on('error', (err: unknown) => {
    if (down) return;
    down = true;
    opts.log.warn({ redis: target.label, user: opts.name, err: errorText(err) }, 'redis connection failed; retrying');
  });
  client.on('ready', () => {
    if (down) opts.log.info({ redis: target.label, user: opts.name }, 'redis connection restored');
    down = false;
  });
  return client;
}

/** True once the client is ready, false when it is not within `timeoutMs`. */
export async function whenReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true;
  if (client.status === 'end' || timeoutMs <= 0) return false;
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    client.once('ready', onReady);
  });
}

/** Close without waiting for an unreachable server. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}
