/**
 * The ordered passdb list with Dovecot's semantics: each passdb's outcome goes through its
 * result_success / result_failure / result_internalfail action; the password is verified here
 * (one scheme implementation for every driver). Master passdbs are a separate list.
 */
import type { Config, PassdbConfig } from '../config/schema.js';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { AuthCache, type AuthCacheStats } from './cache.js';
import { CheckpasswordPassdb } from './checkpassword.js';
import { DecoyPassword } from './decoy.js';
import { flag, parseExtraFields } from './fields.js';
import { PasswdFilePassdb, requestVars } from './passwd-file.js';
import { RedisPassdb } from './redis.js';
import { verifyPassword } from './schemes/index.js';
import { SqlPassdb } from './sql.js';
import { StaticPassdb } from './static.js';
import type { AuthRequest, Fields, Passdb, PassdbLookup, PassdbResult, StoredCredentials } from './types.js';
import { expandTemplate, parseTemplate, TemplateError, type VarName } from './vars.js';

type Action = PassdbConfig['result_success'];

interface ChainEntry {
  readonly db: Passdb;
  readonly conf: PassdbConfig;
  readonly defaults: ReadonlyMap<string, string>;
  readonly overrides: ReadonlyMap<string, string>;
}

/** Variables derived from the user name: the user is always part of the cache key. */
const USER_VARS: ReadonlySet<VarName> = new Set(['user', 'username', 'domain']);

type Mode = 'auth' | 'master' | 'credentials';

export class PassdbChain {
  readonly #entries: readonly ChainEntry[];
  readonly #masters: readonly ChainEntry[];
  readonly #defaultScheme: string;
  readonly #log: Logger;
  readonly #cache: AuthCache | undefined;
  readonly #serveStale: boolean;
  /** Request variables some template reads, sorted: they go into the cache key. */
  readonly #keyVars: readonly VarName[];
  /** Failures without a verification pay one against this (no timing difference for unknown users). */
  readonly #decoy: DecoyPassword;

  constructor(config: Config, log: Logger, drivers: PassdbFactory = createPassdb) {
    this.#log = log;
    this.#defaultScheme = config.default_pass_scheme;
    const entries: ChainEntry[] = [];
    try {
      config.passdb.forEach((conf, i) => {
        entries.push({ db: drivers(conf, i, log, config), conf, defaults: fieldMap(conf.default_fields), overrides: fieldMap(conf.override_fields) });
      });
    } catch (err) {
      // Drivers already built hold pools and sockets: release them before giving up.
      for (const e of entries) void e.db.close?.();
      throw err;
    }
    this.#entries = entries.filter((e) => !e.conf.master);
    this.#masters = entries.filter((e) => e.conf.master);
    const first = this.#entries.find((e) => !e.conf.deny);
    this.#decoy = new DecoyPassword(first === undefined ? this.#defaultScheme : this.#schemeFor(first), log);
    this.#serveStale = config.auth_cache_serve_stale_on_failure;
    this.#cache =
      config.auth_cache_size > 0
        ? new AuthCache({ maxBytes: config.auth_cache_size, ttlMs: config.auth_cache_ttl, negativeTtlMs: config.auth_cache_negative_ttl })
        : undefined;
    const vars = new Set<VarName>();
    for (const e of entries) {
      for (const v of e.db.templateVars ?? []) vars.add(v);
      for (const text of [...e.defaults.values(), ...e.overrides.values()]) {
        for (const t of parseTemplate(text)) if (t.kind === 'var') vars.add(t.name);
      }
    }
    this.#keyVars = [...vars].filter((v) => !USER_VARS.has(v)).sort();
  }

  get hasMasterPassdbs(): boolean {
    return this.#masters.length > 0;
  }

  /**
   * Look up (and, when a password is given, verify) the user through the passdb list. Not
   * `async`: an async function that returns a promise resolves through an extra thenable job.
   */
  authenticate(req: AuthRequest): Promise<PassdbResult> {
    return this.#cached('auth', this.#entries, req);
  }

  /** Verify a master user's password against the master passdbs (req.user is the master). */
  async authenticateMaster(req: AuthRequest): Promise<PassdbResult> {
    if (this.#masters.length === 0) return { kind: 'unknown' };
    return this.#cached('master', this.#masters, req);
  }

  /**
   * A lookup without verification that also returns the stored password (`credentials`), for
   * challenge-response mechanisms (CRAM-MD5). `master` looks in the master passdbs.
   */
  async lookupCredentials(req: AuthRequest, master = false): Promise<PassdbResult> {
    const entries = master ? this.#masters : this.#entries;
    if (entries.length === 0) return { kind: 'unknown' };
    return this.#cached('credentials', entries, { ...req, password: undefined }, master ? 'master-credentials' : 'credentials');
  }

  /** `portier auth cache flush [user]`: how many entries were dropped (0 when the cache is off). */
  flushCache(user?: string): number {
    return this.#cache?.flush(user) ?? 0;
  }

  cacheStats(): AuthCacheStats | undefined {
    return this.#cache?.stats();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#entries, ...this.#masters].map((e) => e.db.close?.()));
  }

  async #cached(mode: Mode, entries: readonly ChainEntry[], req: AuthRequest, keyMode: string = mode): Promise<PassdbResult> {
    const cache = this.#cache;
    // `return await`: one tick, where returning the promise from an async function takes three.
    if (cache === undefined) return await this.#run(entries, req, mode === 'credentials');
    const vars = requestVars(req);
    const key = cache.key(keyMode, req.user, req.masterUser, this.#keyVars.map((v) => vars[v] ?? ''), req.password);
    const hit = cache.get(key);
    if (hit?.fresh === true) {
      this.#log.debug({ user: req.user, result: hit.result.kind }, 'auth cache hit');
      return hit.result;
    }
    const result = await this.#run(entries, req, mode === 'credentials');
    if (result.kind !== 'tempfail') {
      cache.set(key, [req.user], result);
      return result;
    }
    if (this.#serveStale && hit?.result.kind === 'ok') {
      this.#log.warn({ user: req.user, why: result.reason }, 'passdb failing; answered from an expired auth cache entry');
      return hit.result;
    }
    return result;
  }

  /**
   * The chain's answer; a failure for a request with a password that verified none (unknown
   * user, no stored password, a deny hit) costs one decoy verification before it is given.
   */
  async #run(entries: readonly ChainEntry[], req: AuthRequest, wantCredentials: boolean): Promise<PassdbResult> {
    const password = req.password;
    if (password !== undefined) this.#decoy.prepare();
    const note = { verified: false };
    const result = await this.#decide(entries, req, wantCredentials, note);
    if (password === undefined || note.verified || (result.kind !== 'unknown' && result.kind !== 'mismatch')) return result;
    try {
      await this.#decoy.spend(password, req.user);
    } catch (err) {
      this.#log.error({ err: errorText(err) }, 'password verification unavailable');
      return { kind: 'tempfail', reason: `verify: ${errorText(err)}` };
    }
    return result;
  }

  async #decide(entries: readonly ChainEntry[], req: AuthRequest, wantCredentials: boolean, note: { verified: boolean }): Promise<PassdbResult> {
    let passed: boolean | undefined;
    let tempfail: string | undefined;
    let mismatch: { passdb: string; fields: Fields } | undefined;
    let credentials: StoredCredentials | undefined;
    let user = req.user;
    let decidedBy = '';
    const fields = new Map<string, string>();
    for (const entry of entries) {
      if (entry.conf.skip === 'authenticated' && passed === true) continue;
      if (entry.conf.skip === 'unauthenticated' && passed !== true) continue;
      const outcome = await this.#one(entry, user === req.user ? req : { ...req, user }, note);
      let action: Action;
      if (outcome.kind === 'ok') {
        if (entry.conf.deny) return { kind: 'mismatch', passdb: entry.db.name, fields: outcome.fields };
        for (const [k, v] of outcome.fields) fields.set(k, v);
        decidedBy = entry.db.name;
        const stored = outcome.fields.get('password');
        if (wantCredentials && stored !== undefined && stored !== '') credentials = { stored, scheme: this.#schemeFor(entry) };
        user = outcome.fields.get('user') || user;
        action = entry.conf.result_success;
        if (action === 'return-ok' || action === 'return' || action === 'continue' || action === 'continue-ok') passed = true;
      } else if (outcome.kind === 'tempfail') {
        tempfail = outcome.reason;
        action = entry.conf.result_internalfail;
      } else {
        if (entry.conf.deny) continue;
        if (outcome.kind === 'mismatch') mismatch = { passdb: entry.db.name, fields: outcome.fields };
        action = entry.conf.result_failure;
        if (action === 'return' || action === 'continue-fail') passed = false;
      }
      if (action === 'continue-ok') passed = true;
      if (action === 'continue-fail' || action === 'return-fail') passed = false;
      if (action === 'return-ok') passed = true;
      if (action.startsWith('return')) break;
    }
    if (passed === true) {
      fields.delete('password');
      const passdb = decidedBy;
      return wantCredentials ? { kind: 'ok', user, fields, passdb, credentials } : { kind: 'ok', user, fields, passdb };
    }
    if (tempfail !== undefined) return { kind: 'tempfail', reason: tempfail };
    if (mismatch !== undefined) return { kind: 'mismatch', ...mismatch };
    return { kind: 'unknown' };
  }

  /** One passdb: lookup, default/override fields, password check. */
  async #one(
    entry: ChainEntry,
    req: AuthRequest,
    note: { verified: boolean },
  ): Promise<{ kind: 'ok'; fields: Fields } | { kind: 'mismatch'; fields: Fields } | { kind: 'unknown' } | { kind: 'tempfail'; reason: string }> {
    let lookup: PassdbLookup;
    try {
      lookup = await entry.db.lookup(req);
    } catch (err) {
      this.#log.error({ passdb: entry.db.name, err: errorText(err) }, 'passdb lookup failed');
      return { kind: 'tempfail', reason: `${entry.db.name}: ${errorText(err)}` };
    }
    if (lookup.kind === 'unknown' || lookup.kind === 'tempfail') return lookup;
    const fields = this.#applyFieldRules(entry, req, lookup.fields);
    if (lookup.kind === 'verified') {
      note.verified = true;
      return lookup.ok ? { kind: 'ok', fields } : { kind: 'mismatch', fields };
    }
    // A deny passdb lists names without passwords (Dovecot's deny file): being found decides.
    if (entry.conf.deny) return { kind: 'ok', fields };
    if (req.password === undefined) return { kind: 'ok', fields };
    const stored = fields.get('password') ?? '';
    // Dovecot checks a non-empty password even with nopassword; portier answers the same.
    if (flag(fields, 'nopassword') && stored === '') return { kind: 'ok', fields };
    if (stored === '') return { kind: 'mismatch', fields };
    const scheme = this.#schemeFor(entry);
    let verdict: Awaited<ReturnType<typeof verifyPassword>>;
    try {
      verdict = await verifyPassword(stored, req.password, { defaultScheme: scheme, user: req.user });
    } catch (err) {
      this.#log.error({ passdb: entry.db.name, err: errorText(err) }, 'password verification unavailable');
      return { kind: 'tempfail', reason: `verify: ${errorText(err)}` };
    }
    if (verdict === 'ok' || verdict === 'mismatch') {
      note.verified = true;
      this.#decoy.learn(stored, scheme);
    }
    if (verdict === 'ok') return { kind: 'ok', fields };
    if (verdict === 'mismatch') return { kind: 'mismatch', fields };
    this.#log.error({ passdb: entry.db.name, user: req.user, scheme: verdict.scheme, problem: verdict.error }, 'passdb: cannot verify the stored password');
    return { kind: 'tempfail', reason: `stored password: ${verdict.error} ${verdict.scheme}` };
  }

  /** passwd-file's `scheme`, sql/redis `default_pass_scheme` (or the driver's), else the global one. */
  #schemeFor(entry: ChainEntry): string {
    const conf = entry.conf;
    if (conf.driver === 'passwd-file' && conf.scheme) return conf.scheme;
    return entry.db.defaultScheme ?? this.#defaultScheme;
  }

  #applyFieldRules(entry: ChainEntry, req: AuthRequest, found: Fields): Fields {
    if (entry.defaults.size === 0 && entry.overrides.size === 0) return found;
    const vars = requestVars(req);
    const out = new Map<string, string>();
    for (const [k, v] of entry.defaults) out.set(k, expandTemplate(v, vars));
    for (const [k, v] of found) out.set(k, v);
    for (const [k, v] of entry.overrides) out.set(k, expandTemplate(v, vars));
    return out;
  }
}

export type PassdbFactory = (conf: PassdbConfig, index: number, log: Logger, config: Config) => Passdb;

export function createPassdb(conf: PassdbConfig, index: number, log: Logger, config: Config): Passdb {
  const name = conf.name ?? `${conf.driver}#${index}`;
  switch (conf.driver) {
    case 'passwd-file':
      if (conf.path === undefined) throw new PortierError('PASSDB_CONFIG', `${name}: no path`);
      return new PasswdFilePassdb({ name, path: conf.path, usernameFormat: conf.username_format, log });
    case 'static':
      return new StaticPassdb(name, staticFields(conf.args, conf.fields));
    case 'sql':
      return new SqlPassdb({
        name,
        args: conf.args,
        connect: conf.connect,
        passwordQuery: conf.password_query,
        defaultScheme: conf.default_pass_scheme ?? config.default_pass_scheme,
        queryTimeoutMs: conf.query_timeout,
        log,
      });
    case 'redis':
      return new RedisPassdb({
        name,
        connect: conf.connect,
        key: conf.key,
        valueFormat: conf.value_format,
        defaultScheme: conf.default_pass_scheme ?? config.default_pass_scheme,
        queryTimeoutMs: conf.query_timeout,
        log,
      });
    case 'checkpassword':
      return new CheckpasswordPassdb({
        name,
        args: conf.args,
        replyPath: conf.checkpassword_reply_path,
        timeoutMs: conf.timeout,
        maxConcurrency: conf.max_concurrency,
        log,
      });
  }
}

function staticFields(args: string | undefined, fields: PassdbConfig['default_fields']): Map<string, string> {
  const out = args === undefined ? new Map<string, string>() : parseExtraFields(args);
  for (const [k, v] of fieldMap(fields)) out.set(k, v);
  return out;
}

function fieldMap(value: PassdbConfig['default_fields']): Map<string, string> {
  if (value === undefined) return new Map();
  if (typeof value === 'string') return parseExtraFields(value);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === false) continue;
    out.set(k, v === true ? 'y' : String(v));
  }
  return out;
}

export { TemplateError };
