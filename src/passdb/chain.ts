/**
 * The ordered passdb list with Dovecot's semantics: each passdb's outcome goes through its
 * result_success / result_failure / result_internalfail action; the password is verified here
 * (one scheme implementation for every driver). Master passdbs are a separate list.
 */
import type { Config, PassdbConfig } from '../config/schema.js';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { flag, parseExtraFields } from './fields.js';
import { PasswdFilePassdb, requestVars } from './passwd-file.js';
import { verifyPassword } from './schemes/index.js';
import { StaticPassdb } from './static.js';
import type { AuthRequest, Fields, Passdb, PassdbLookup, PassdbResult } from './types.js';
import { expandTemplate, TemplateError } from './vars.js';

type Action = PassdbConfig['result_success'];

interface ChainEntry {
  readonly db: Passdb;
  readonly conf: PassdbConfig;
  readonly defaults: ReadonlyMap<string, string>;
  readonly overrides: ReadonlyMap<string, string>;
}

export class PassdbChain {
  readonly #entries: readonly ChainEntry[];
  readonly #masters: readonly ChainEntry[];
  readonly #defaultScheme: string;
  readonly #log: Logger;

  constructor(config: Config, log: Logger, drivers: PassdbFactory = createPassdb) {
    this.#log = log;
    this.#defaultScheme = config.default_pass_scheme;
    const entries = config.passdb.map((conf, i): ChainEntry => ({
      db: drivers(conf, i, log),
      conf,
      defaults: fieldMap(conf.default_fields),
      overrides: fieldMap(conf.override_fields),
    }));
    this.#entries = entries.filter((e) => !e.conf.master);
    this.#masters = entries.filter((e) => e.conf.master);
  }

  get hasMasterPassdbs(): boolean {
    return this.#masters.length > 0;
  }

  /** Look up (and, when a password is given, verify) the user through the passdb list. */
  async authenticate(req: AuthRequest): Promise<PassdbResult> {
    return this.#run(this.#entries, req);
  }

  /** Verify a master user's password against the master passdbs (req.user is the master). */
  async authenticateMaster(req: AuthRequest): Promise<PassdbResult> {
    if (this.#masters.length === 0) return { kind: 'unknown' };
    return this.#run(this.#masters, req);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#entries, ...this.#masters].map((e) => e.db.close?.()));
  }

  async #run(entries: readonly ChainEntry[], req: AuthRequest): Promise<PassdbResult> {
    let passed: boolean | undefined;
    let tempfail: string | undefined;
    let mismatch: { passdb: string; fields: Fields } | undefined;
    let user = req.user;
    const fields = new Map<string, string>();
    for (const entry of entries) {
      if (entry.conf.skip === 'authenticated' && passed === true) continue;
      if (entry.conf.skip === 'unauthenticated' && passed !== true) continue;
      const outcome = await this.#one(entry, { ...req, user });
      let action: Action;
      if (outcome.kind === 'ok') {
        if (entry.conf.deny) return { kind: 'mismatch', passdb: entry.db.name, fields: outcome.fields };
        for (const [k, v] of outcome.fields) fields.set(k, v);
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
      return { kind: 'ok', user, fields, passdb: entries.map((e) => e.db.name).join(',') };
    }
    if (tempfail !== undefined) return { kind: 'tempfail', reason: tempfail };
    if (mismatch !== undefined) return { kind: 'mismatch', ...mismatch };
    return { kind: 'unknown' };
  }

  /** One passdb: lookup, default/override fields, password check. */
  async #one(
    entry: ChainEntry,
    req: AuthRequest,
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
    if (lookup.kind === 'verified') return lookup.ok ? { kind: 'ok', fields } : { kind: 'mismatch', fields };
    if (req.password === undefined) return { kind: 'ok', fields };
    const stored = fields.get('password') ?? '';
    if (flag(fields, 'nopassword')) {
      if (stored !== '') {
        this.#log.error({ passdb: entry.db.name, user: req.user }, 'passdb: nopassword set together with a non-empty password');
        return { kind: 'tempfail', reason: 'nopassword with a password' };
      }
      return { kind: 'ok', fields };
    }
    if (stored === '') return { kind: 'mismatch', fields };
    const scheme = entry.conf.driver === 'passwd-file' && entry.conf.scheme ? entry.conf.scheme : this.#defaultScheme;
    let verdict: Awaited<ReturnType<typeof verifyPassword>>;
    try {
      verdict = await verifyPassword(stored, req.password, { defaultScheme: scheme, user: req.user });
    } catch (err) {
      this.#log.error({ passdb: entry.db.name, err: errorText(err) }, 'password verification unavailable');
      return { kind: 'tempfail', reason: `verify: ${errorText(err)}` };
    }
    if (verdict === 'ok') return { kind: 'ok', fields };
    if (verdict === 'mismatch') return { kind: 'mismatch', fields };
    this.#log.error({ passdb: entry.db.name, user: req.user, scheme: verdict.scheme, problem: verdict.error }, 'passdb: cannot verify the stored password');
    return { kind: 'tempfail', reason: `stored password: ${verdict.error} ${verdict.scheme}` };
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

export type PassdbFactory = (conf: PassdbConfig, index: number, log: Logger) => Passdb;

export function createPassdb(conf: PassdbConfig, index: number, log: Logger): Passdb {
  const name = conf.name ?? `${conf.driver}#${index}`;
  switch (conf.driver) {
    case 'passwd-file':
      if (conf.path === undefined) throw new PortierError('PASSDB_CONFIG', `${name}: no path`);
      return new PasswdFilePassdb({ name, path: conf.path, usernameFormat: conf.username_format, log });
    case 'static':
      return new StaticPassdb(name, staticFields(conf.args, conf.fields));
    default:
      throw new PortierError('PASSDB_CONFIG', `${name}: the ${conf.driver} driver is not available in this build`);
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
