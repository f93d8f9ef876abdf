/**
 * Scheme names → implementations, with Dovecot's aliases and its `.HEX`/`.B64`/`.BASE64`
 * suffixes (password_scheme_lookup), and the decoding of a stored value (password_decode).
 */
import {
  argon2i,
  argon2id,
  blfCrypt,
  crypt,
  md5,
  md5CryptScheme,
  sha256Crypt,
  sha512Crypt,
} from './crypt-schemes.js';
import { cramMd5Scheme, digestMd5Scheme, digestScheme, plain, plainTrunc, saltedScheme } from './digest.js';
import { decodeBase64, decodeHex } from './encoding.js';
import { pbkdf2, scramScheme } from './pbkdf2.js';
import type { Encoding, SchemeImpl } from './types.js';

const sha1 = digestScheme('sha1', 20, 'base64');
const desCrypt: SchemeImpl = { encoding: 'none', rawLength: 0, verify: crypt.verify };

/** Canonical names (Dovecot's spelling) and the implementation behind each. */
const SCHEMES = new Map<string, SchemeImpl>([
  ['PLAIN', plain],
  ['PLAIN-TRUNC', plainTrunc],
  ['CRYPT', crypt],
  ['DES-CRYPT', desCrypt],
  ['MD5-CRYPT', md5CryptScheme],
  ['SHA256-CRYPT', sha256Crypt],
  ['SHA512-CRYPT', sha512Crypt],
  ['BLF-CRYPT', blfCrypt],
  ['ARGON2I', argon2i],
  ['ARGON2ID', argon2id],
  ['MD5', md5],
  ['PLAIN-MD5', digestScheme('md5', 16, 'hex')],
  ['LDAP-MD5', digestScheme('md5', 16, 'base64')],
  ['SHA', sha1],
  ['SHA256', digestScheme('sha256', 32, 'base64')],
  ['SHA512', digestScheme('sha512', 64, 'base64')],
  ['SMD5', saltedScheme('md5', 16)],
  ['SSHA', saltedScheme('sha1', 20)],
  ['SSHA256', saltedScheme('sha256', 32)],
  ['SSHA512', saltedScheme('sha512', 64)],
  ['DIGEST-MD5', digestMd5Scheme],
  ['CRAM-MD5', cramMd5Scheme],
  ['PBKDF2', pbkdf2],
  ['SCRAM-SHA-1', scramScheme('sha1')],
  ['SCRAM-SHA-256', scramScheme('sha256')],
]);

const ALIASES = new Map<string, string>([
  ['CLEAR', 'PLAIN'],
  ['CLEARTEXT', 'PLAIN'],
  ['SHA1', 'SHA'],
  ['HMAC-MD5', 'CRAM-MD5'],
]);

const SUFFIXES = new Map<string, Encoding>([
  ['HEX', 'hex'],
  ['B64', 'base64'],
  ['BASE64', 'base64'],
]);

/** Every accepted scheme name, aliases included (for `portier pw -l` and config checks). */
export const SCHEME_NAMES: readonly string[] = [...SCHEMES.keys(), ...ALIASES.keys()].sort();

export interface SchemeLookup {
  /** Canonical name, without suffix. */
  readonly name: string;
  readonly impl: SchemeImpl;
  readonly encoding: Encoding;
  /** The encoding came from a suffix, so no guessing and no fallback. */
  readonly explicitEncoding: boolean;
}

/** Case-insensitive; null for an unknown scheme or an unknown suffix (Dovecot treats both alike). */
export function lookupScheme(scheme: string): SchemeLookup | null {
  const upper = scheme.toUpperCase();
  const dot = upper.indexOf('.');
  const base = dot < 0 ? upper : upper.slice(0, dot);
  const name = ALIASES.get(base) ?? base;
  const impl = SCHEMES.get(name);
  if (impl === undefined) return null;
  if (dot < 0) return { name, impl, encoding: impl.encoding, explicitEncoding: false };
  const encoding = SUFFIXES.get(upper.slice(dot + 1));
  return encoding === undefined ? null : { name, impl, encoding, explicitEncoding: true };
}

/**
 * The stored value's bytes. Fixed-size digests without a suffix may be hex or base64: the length
 * decides (Dovecot's guess). Null when it does not decode or has the wrong length.
 */
export function decodeStored(value: string, found: SchemeLookup): Buffer | null {
  const { impl, explicitEncoding } = found;
  let encoding = found.encoding;
  if (!explicitEncoding && impl.rawLength > 0 && encoding !== 'none') {
    encoding = value.length === impl.rawLength * 2 ? 'hex' : 'base64';
  }
  let raw: Buffer | null;
  if (encoding === 'none') raw = Buffer.from(value, 'utf8');
  else if (encoding === 'hex') raw = decodeHex(value) ?? (explicitEncoding ? null : decodeBase64(value));
  else raw = decodeBase64(value);
  if (raw === null || (impl.rawLength > 0 && raw.length !== impl.rawLength)) return null;
  return raw;
}
