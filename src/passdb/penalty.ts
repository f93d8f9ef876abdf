/**
 * Dovecot's auth failure penalty (auth-penalty.c + anvil's penalty.c) per client IP (IPv6 per
 * prefix): before a passdb lookup a penalised IP waits min(initial × 2^penalty, max); each
 * failure raises the penalty by one, unless the same user+password failed recently (a client
 * with a stale password is not an attack); a success resets it; without failures it decays.
 * The state lives in Redis when configured (shared by all replicas, Redis clock), in memory
 * otherwise and whenever Redis does not answer within a short bound.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Config } from '../config/schema.js';
import { errorText } from '../errors.js';
import { penaltyBucket } from '../listen/netmatch.js';
import type { Logger } from '../telemetry/log.js';
import { closeRedis, createRedis, parseRedisConnect, whenReady } from './redis-client.js';

/** Recent user+password checksums remembered per IP (anvil's CHECKSUM_VALUE_PTR_COUNT). */
export const PENALTY_CHECKSUMS = 10;
/** Distinct IPs tracked in memory; the least recently failed are forgotten first. */
const MEMORY_IDENTS = 100_000;
/** A Redis round trip slower than this falls back to memory for this request. */
const REDIS_TIMEOUT_MS = 500;
const REDIS_PREFIX = 'portier:penalty:';

export interface PenaltyOptions {
  readonly initialDelayMs: number;
  /** 0: penalty off. */
  readonly maxDelayMs: number;
  readonly ipv6Prefix: number;
  readonly redis?: string | undefined;
  readonly log: Logger;
  readonly now?: () => number;
}

interface State {
  penalty: number;
  /** When the penalty last rose (ms). */
  last: number;
  checksums: string[];
}

/** What the lookup saw: the decayed penalty and the wait it causes. */
export interface PenaltySeen {
  readonly ident: string;
  readonly penalty: number;
  readonly delayMs: number;
}

export class AuthPenalty {
  readonly #initial: number;
  readonly #max: number;
  readonly #maxPenalty: number;
  readonly #expireMs: number;
  readonly #v6Prefix: number;
  readonly #memory: LRUCache<string, State>;
  readonly #redis: Redis | undefined;
  readonly #log: Logger;
  readonly #now: () => number;
  #redisFailing = false;

  constructor(opts: PenaltyOptions) {
    this.#initial = Math.max(1, opts.initialDelayMs);
    this.#max = opts.maxDelayMs;
    this.#v6Prefix = opts.ipv6Prefix;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    // Dovecot: 2 s doubling to 15 s gives AUTH_PENALTY_MAX_PENALTY 4 and a 2+4+8+15 s expiry.
    this.#maxPenalty = this.enabled ? Math.ceil(Math.log2(Math.max(2, this.#max / this.#initial))) + 1 : 0;
    let expire = 0;
    for (let p = 0; p < this.#maxPenalty; p++) expire += p === 0 ? this.#initial : this.delayFor(p);
    this.#expireMs = Math.max(expire, this.#max);
    this.#memory = new LRUCache<string, State>({ max: MEMORY_IDENTS, ttl: this.#expireMs });
    this.#redis =
      this.enabled && opts.redis !== undefined
        ? createRedis(parseRedisConnect(opts.redis), { name: 'auth penalty', commandTimeoutMs: REDIS_TIMEOUT_MS, log: opts.log })
        : undefined;
  }

  static fromConfig(config: Config, log: Logger): AuthPenalty {
    return new AuthPenalty({
      initialDelayMs: config.auth_penalty_initial_delay,
      maxDelayMs: config.auth_penalty_max_delay,
      ipv6Prefix: config.auth_penalty_ipv6_prefix,
      redis: config.auth_penalty_redis,
      log,
    });
  }

  get enabled(): boolean {
    return this.#max > 0;
  }

  /** The wait for a penalty value: 0 for none, else min(initial × 2^penalty, max). */
  delayFor(penalty: number): number {
    if (penalty <= 0 || !this.enabled) return 0;
    return Math.min(this.#initial * 2 ** penalty, this.#max);
  }

  /** The client's penalty now (decayed), and how long to hold its request. */
  async lookup(ip: string): Promise<PenaltySeen> {
    const ident = penaltyBucket(ip, this.#v6Prefix);
    if (!this.enabled) return { ident, penalty: 0, delayMs: 0 };
    const shared = await this.#redisCall(async (r) => {
      const [p, t, now] = (await r.eval(GET_SCRIPT, 1, REDIS_PREFIX + ident)) as [number, number, number];
      return this.#decay(p, t, now);
    });
    const penalty = shared ?? this.#memoryPenalty(ident);
    return { ident, penalty, delayMs: this.delayFor(penalty) };
  }

  /** A failed login: raise the penalty seen at lookup by one (not for a repeated user+password). */
  async failed(seen: PenaltySeen, user: string, password: Buffer | undefined): Promise<void> {
    if (!this.enabled) return;
    const value = Math.min(seen.penalty + 1, this.#maxPenalty);
    const checksum = password === undefined ? '' : userPassChecksum(user, password);
    const done = await this.#redisCall(async (r) => {
      await r.eval(INC_SCRIPT, 1, REDIS_PREFIX + seen.ident, checksum, value, this.#expireMs, PENALTY_CHECKSUMS);
      return true;
    });
    if (done === undefined) this.#memoryInc(seen.ident, checksum, value);
  }

  /** A successful login resets a penalised IP (Dovecot resets only when there was a penalty). */
  async succeeded(seen: PenaltySeen): Promise<void> {
    if (!this.enabled || seen.penalty === 0) return;
    const done = await this.#redisCall(async (r) => {
      await r.del(REDIS_PREFIX + seen.ident);
      return true;
    });
    if (done === undefined) this.#memory.delete(seen.ident);
  }

  async close(): Promise<void> {
    if (this.#redis !== undefined) await closeRedis(this.#redis);
  }

  /** Dovecot's decay: after max-delay seconds without a new failure the penalty falls step by step. */
  #decay(penalty: number, last: number, now: number): number {
    let p = Math.min(penalty, this.#maxPenalty);
    if (last > now) last = now;
    let drop = this.#maxPenalty;
    while (p > 0) {
      if (now - last < this.delayFor(drop)) break;
      drop--;
      p--;
    }
    return p;
  }

  #memoryPenalty(ident: string): number {
    const s = this.#memory.get(ident);
    return s === undefined ? 0 : this.#decay(s.penalty, s.last, this.#now());
  }

  /** anvil's penalty_inc: a known checksum keeps the penalty (value - 1) and its timestamp. */
  #memoryInc(ident: string, checksum: string, value: number): void {
    const now = this.#now();
    const s = this.#memory.get(ident) ?? { penalty: 0, last: now, checksums: [] };
    const at = checksum === '' ? -1 : s.checksums.indexOf(checksum);
    if (at >= 0) {
      s.checksums.splice(at, 1);
      s.checksums.unshift(checksum);
      s.penalty = value - 1;
    } else {
      if (checksum !== '') s.checksums = [checksum, ...s.checksums].slice(0, PENALTY_CHECKSUMS);
      s.penalty = value;
      s.last = now;
    }
    this.#memory.set(ident, s);
  }

  /** Run against Redis when it is configured and answers quickly; undefined means "use memory". */
  async #redisCall<T>(fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
    const r = this.#redis;
    if (r === undefined) return undefined;
    try {
      if (!(await whenReady(r, 0))) throw new Error('not connected');
      const out = await fn(r);
      if (this.#redisFailing) this.#log.info('auth penalty: shared state in Redis is back');
      this.#redisFailing = false;
      return out;
    } catch (err) {
      if (!this.#redisFailing) this.#log.warn({ err: errorText(err) }, 'auth penalty: Redis unavailable; using this process\'s memory');
      this.#redisFailing = true;
      return undefined;
    }
  }
}

/** 32 bits of SHA-256 over user and password, like Dovecot's CRC32: enough to spot a repeat, too little to reveal a password. */
export function userPassChecksum(user: string, password: Buffer): string {
  return createHash('sha256').update(user).update('\0').update(password).digest('hex').slice(0, 8);
}

/** → penalty, last rise (ms), Redis now (ms): one clock for every replica. */
const GET_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'p', 't')
return { tonumber(v[1]) or 0, tonumber(v[2]) or now, now }
`;

/** ARGV: checksum ('' = none), new value, expiry ms, checksums kept. Mirrors anvil's penalty_inc. */
const INC_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sum = ARGV[1]
local value = tonumber(ARGV[2])
if sum == '' then
  redis.call('HSET', KEYS[1], 'p', value, 't', now)
else
  local list = redis.call('HGET', KEYS[1], 'c') or ''
  if string.find(',' .. list .. ',', ',' .. sum .. ',', 1, true) then
    redis.call('HSET', KEYS[1], 'p', value - 1)
    if redis.call('HEXISTS', KEYS[1], 't') == 0 then redis.call('HSET', KEYS[1], 't', now) end
  else
    local kept = { sum }
    for c in string.gmatch(list, '[^,]+') do
      if #kept < tonumber(ARGV[4]) then table.insert(kept, c) end
    end
    redis.call('HSET', KEYS[1], 'p', value, 't', now, 'c', table.concat(kept, ','))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;
