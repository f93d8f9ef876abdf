/**
 * Dovecot password schemes: `{SCHEME}value` parsing, verification, generation (for `portier pw`
 * and tests), and the credentials CRAM-MD5 needs. Passwords are bytes end to end: IMAP literals
 * may carry non-UTF-8 and Dovecot compares bytes.
 */
import { isUtf8 } from 'node:buffer';
import { PortierError } from '../../errors.js';
import { cramMd5Context } from './cram-md5.js';
import { decodeStored, lookupScheme } from './table.js';
import type { Outcome, VerifyResult } from './types.js';

export { closeHashPool, configureHashPool, DEFAULT_HASH_QUEUE, hashWorkStarted, type HashPoolOptions } from './pool.js';
export { CRAM_MD5_CONTEXT_LENGTH, cramMd5Context, cramMd5Matches, hmacMd5FromContext } from './cram-md5.js';
export { SCHEME_NAMES } from './table.js';
export type { VerifyResult } from './types.js';

export interface StoredPassword {
  /** Upper-cased as written, suffix included (`SHA256.HEX`); resolve aliases with the verifier. */
  readonly scheme: string;
  readonly value: string;
}

/**
 * Split Dovecot's `{SCHEME}value`; without a prefix the value uses `defaultScheme`. As in Dovecot's
 * password_get_scheme, a bare `$1$salt$hash` is MD5-CRYPT and anything after its hash is dropped.
 */
export function parseStored(stored: string, defaultScheme: string): StoredPassword {
  if (stored.startsWith('$1$')) {
    const saltEnd = stored.indexOf('$', 3);
    if (saltEnd >= 0) {
      const hashEnd = stored.indexOf('$', saltEnd + 1);
      return { scheme: 'MD5-CRYPT', value: hashEnd < 0 ? stored : stored.slice(0, hashEnd) };
    }
  }
  const end = stored.startsWith('{') ? stored.indexOf('}') : -1;
  if (end < 0) return { scheme: defaultScheme.toUpperCase(), value: stored };
  return { scheme: stored.slice(1, end).toUpperCase(), value: stored.slice(end + 1) };
}

export interface VerifyOptions {
  readonly defaultScheme: string;
  /** The login name; DIGEST-MD5 hashes it in. */
  readonly user: string;
  /** Abandon a queued or running worker task (login timeout); the promise then rejects. */
  readonly signal?: AbortSignal;
}

/**
 * Check `password` against a stored value. Never throws for a stored value it cannot read
 * (that is `{ error }`); rejects only for infrastructure trouble: PortierError PASSDB_TEMPFAIL
 * when the hash queue is full or a worker died, or an AbortError from `signal`.
 */
export async function verifyPassword(stored: string, password: Buffer, opts: VerifyOptions): Promise<VerifyResult> {
  const { scheme, value } = parseStored(stored, opts.defaultScheme);
  const found = lookupScheme(scheme);
  if (found === null) return { error: 'unknown-scheme', scheme };
  const raw = decodeStored(value, found);
  if (raw === null) return { error: 'malformed', scheme };
  let outcome: Outcome;
  try {
    outcome = await found.impl.verify(raw, password, { user: opts.user, signal: opts.signal });
  } catch (err) {
    if (err instanceof PortierError || (err instanceof Error && err.name === 'AbortError')) throw err;
    return { error: 'malformed', scheme };
  }
  if (outcome === 'ok' || outcome === 'mismatch') return outcome;
  if (outcome === 'malformed') return { error: 'malformed', scheme };
  return { error: 'unknown-scheme', scheme: outcome.unsupported };
}

export interface HashOptions {
  /** Cost parameter where the scheme has one (doveadm pw -r): crypt rounds, bcrypt cost, argon2 t, PBKDF2/SCRAM iterations. */
  readonly rounds?: number;
  /** DIGEST-MD5 needs it. */
  readonly user?: string;
}

/**
 * A new stored value `{SCHEME}...` for `password`, as `doveadm pw -s SCHEME` would write it.
 * Throws RangeError for an unknown or verify-only scheme or bad options. A non-UTF-8 password
 * under a cleartext-like scheme is written base64 (`{PLAIN.B64}`) so that it survives as text.
 */
export async function hashPassword(scheme: string, password: Buffer, opts: HashOptions = {}): Promise<string> {
  const found = lookupScheme(scheme);
  if (found?.impl.generate === undefined) throw new RangeError(`cannot generate ${scheme} passwords`);
  if (opts.rounds !== undefined && (!Number.isInteger(opts.rounds) || opts.rounds < 1)) {
    throw new RangeError('rounds must be a positive integer');
  }
  const raw = await found.impl.generate(password, { rounds: opts.rounds, user: opts.user });
  const name = scheme.toUpperCase();
  switch (found.encoding) {
    case 'hex':
      return `{${name}}${raw.toString('hex')}`;
    case 'base64':
      return `{${name}}${raw.toString('base64')}`;
    case 'none':
      return isUtf8(raw) ? `{${name}}${raw.toString('utf8')}` : `{${name}.B64}${raw.toString('base64')}`;
  }
}

/**
 * What a challenge-response mechanism needs from the stored value: `PLAIN` gives the cleartext
 * (only from PLAIN/CLEAR/CLEARTEXT), `CRAM-MD5` the 32-byte HMAC-MD5 context (stored as
 * {CRAM-MD5}/{HMAC-MD5}, or computed from a cleartext). Null when this stored value cannot provide it.
 */
export function credentialsFor(stored: string, defaultScheme: string, wanted: 'PLAIN' | 'CRAM-MD5'): Buffer | null {
  const { scheme, value } = parseStored(stored, defaultScheme);
  const found = lookupScheme(scheme);
  const raw = found === null ? null : decodeStored(value, found);
  if (found === null || raw === null) return null;
  if (found.name === 'PLAIN') return wanted === 'PLAIN' ? raw : cramMd5Context(raw);
  if (found.name === 'CRAM-MD5' && wanted === 'CRAM-MD5') return raw;
  return null;
}
