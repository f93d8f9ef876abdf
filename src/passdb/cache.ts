/**
 * Dovecot's auth cache (auth_cache_size / auth_cache_ttl / auth_cache_negative_ttl): passdb
 * results by user, the request variables the passdbs use, and a keyed hash of the password
 * (HMAC with a per-process random key; the password itself is never stored or logged).
 * Size-bounded LRU. Expired positive entries stay until evicted so that, while the passdbs
 * fail temporarily, a user who logged in before can still log in (as Dovecot does).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { PassdbResult } from './types.js';

/** Results worth keeping: never a temporary failure. */
export type CachedResult = Exclude<PassdbResult, { kind: 'tempfail' }>;

interface Entry {
  readonly result: CachedResult;
  /** Request user names this entry answers for (flush by user). */
  readonly users: readonly string[];
  readonly expiresAt: number;
}

export interface AuthCacheOptions {
  /** Approximate bytes (keys + fields); Dovecot's auth_cache_size. */
  readonly maxBytes: number;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly now?: () => number;
}

export interface CacheLookup {
  readonly result: CachedResult;
  /** False for an entry past its TTL (usable only while the passdbs fail). */
  readonly fresh: boolean;
}

export interface AuthCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
}

/** Fixed overhead per entry in the size estimate (object, timestamps, LRU links). */
const ENTRY_OVERHEAD = 96;

export class AuthCache {
  readonly #lru: LRUCache<string, Entry>;
  readonly #key = randomBytes(32);
  readonly #ttl: number;
  readonly #negativeTtl: number;
  readonly #now: () => number;
  #hits = 0;
  #misses = 0;

  constructor(opts: AuthCacheOptions) {
    this.#ttl = opts.ttlMs;
    this.#negativeTtl = opts.negativeTtlMs;
    this.#now = opts.now ?? Date.now;
    this.#lru = new LRUCache<string, Entry>({
      maxSize: Math.max(1, opts.maxBytes),
      sizeCalculation: (entry, key) => key.length + entrySize(entry),
    });
  }

  /** The cache key: mode, user, master, the variables the passdbs read, and the password's keyed hash. */
  key(mode: string, user: string, masterUser: string | undefined, vars: readonly string[], password: Buffer | undefined): string {
    const pw = password === undefined ? '-' : createHmac('sha256', this.#key).update(password).digest('base64');
    return JSON.stringify([mode, user, masterUser ?? '', vars, pw]);
  }

  get(key: string): CacheLookup | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    const fresh = this.#now() < entry.expiresAt;
    if (fresh) this.#hits++;
    else this.#misses++;
    return { result: entry.result, fresh };
  }

  set(key: string, users: readonly string[], result: CachedResult): void {
    const ttl = result.kind === 'ok' ? this.#ttl : this.#negativeTtl;
    if (ttl <= 0) return;
    this.#lru.set(key, { result, users: [...new Set(users)], expiresAt: this.#now() + ttl });
  }

  /** Drop every entry, or those of one user; returns how many were dropped. */
  flush(user?: string): number {
    if (user === undefined) {
      const n = this.#lru.size;
      this.#lru.clear();
      return n;
    }
    const doomed: string[] = [];
    for (const [k, entry] of this.#lru.entries()) {
      if (entry.users.includes(user) || (entry.result.kind === 'ok' && entry.result.user === user)) doomed.push(k);
    }
    for (const k of doomed) this.#lru.delete(k);
    return doomed.length;
  }

  stats(): AuthCacheStats {
    return { entries: this.#lru.size, bytes: this.#lru.calculatedSize, hits: this.#hits, misses: this.#misses };
  }
}

function entrySize(entry: Entry): number {
  let n = ENTRY_OVERHEAD;
  for (const u of entry.users) n += u.length;
  const r = entry.result;
  if (r.kind === 'ok' || r.kind === 'mismatch') for (const [k, v] of r.fields) n += k.length + v.length + 16;
  if (r.kind === 'ok') n += r.user.length + r.passdb.length + (r.credentials?.stored.length ?? 0);
  return n;
}
