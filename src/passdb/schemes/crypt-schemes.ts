/**
 * crypt(3)-style schemes. CRYPT, DES-CRYPT, SHA256-CRYPT and SHA512-CRYPT all call crypt() in
 * Dovecot, so the hash prefix decides the algorithm; MD5-CRYPT and BLF-CRYPT insist on theirs.
 * argon2 comes from @node-rs (libuv threadpool); SHA/MD5-crypt and bcrypt run in the worker pool.
 */
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import * as argon2 from '@node-rs/argon2';
import { genSaltSync as bcryptSalt } from 'bcryptjs';
import { PortierError } from '../../errors.js';
import {
  MD5_CRYPT_HASH_LENGTH,
  parseMd5Crypt,
  parseShaCrypt,
  SHA_CRYPT_HASH_LENGTH,
  SHA_CRYPT_ROUNDS_DEFAULT,
  SHA_CRYPT_ROUNDS_MAX,
  SHA_CRYPT_ROUNDS_MIN,
} from './crypt.js';
import { cryptSalt, decodeBase64, decodeHex, digestEqual, secretEqual } from './encoding.js';
import { digestScheme } from './digest.js';
import { bcryptInPool, md5CryptInPool, shaCryptInPool, withNativeSlot } from './pool.js';
import type { GenerateOptions, Outcome, SchemeImpl, VerifyContext } from './types.js';

const BCRYPT = /^\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;
const ARGON2 = /^\$argon2(?:i|id)\$v=(?:16|19)\$m=[0-9]{1,10},t=[0-9]{1,10},p=[0-9]{1,3}\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;
/** Refuse stored argon2 parameters above 4 GiB instead of trying to allocate them. */
const ARGON2_MAX_MEMORY_KIB = 4 * 1024 * 1024;
/** Dovecot's default BLF-CRYPT cost (doveadm pw gives `$2y$05$`). */
const BCRYPT_DEFAULT_COST = 5;

/** Other crypt(3) ids, reported by name so the operator knows what they are looking at. */
const FOREIGN_CRYPT: ReadonlyArray<readonly [RegExp, string]> = [
  [/^\$y\$/, 'YESCRYPT'],
  [/^\$gy\$/, 'GOST-YESCRYPT'],
  [/^\$7\$/, 'SCRYPT'],
  [/^\$sha1\$/, 'SHA1-CRYPT'],
  [/^\$md5[$,]/, 'SUN-MD5-CRYPT'],
  [/^\$3\$/, 'NT-HASH'],
  [/^_[./0-9A-Za-z]{19}$/, 'BSDI-CRYPT'],
  [/^[./0-9A-Za-z]{13}$/, 'DES-CRYPT'],
  [/^\$argon2/, 'ARGON2 (use {ARGON2ID})'],
];

async function verifyShaCrypt(text: string, pw: Buffer, ctx: VerifyContext): Promise<Outcome> {
  const parsed = parseShaCrypt(text);
  if (parsed === null || parsed.hash?.length !== SHA_CRYPT_HASH_LENGTH[parsed.setting.id]) return 'malformed';
  const computed = await shaCryptInPool(pw, text, ctx.signal);
  if (computed === null) return 'malformed';
  return secretEqual(Buffer.from(computed), Buffer.from(text)) ? 'ok' : 'mismatch';
}

async function verifyMd5Crypt(text: string, pw: Buffer, ctx: VerifyContext): Promise<Outcome> {
  const parsed = parseMd5Crypt(text);
  if (parsed === null || parsed.hash?.length !== MD5_CRYPT_HASH_LENGTH) return 'malformed';
  const computed = await md5CryptInPool(pw, parsed.salt, ctx.signal);
  return secretEqual(Buffer.from(computed), Buffer.from(text)) ? 'ok' : 'mismatch';
}

/**
 * bcryptjs takes JS strings, so a password that is not UTF-8 cannot be hashed as the bytes it is:
 * it is reported as a mismatch. `$2x$` (crypt_blowfish's compatibility mode) is not implemented.
 */
async function verifyBcrypt(text: string, pw: Buffer, ctx: VerifyContext): Promise<Outcome> {
  if (text.startsWith('$2x$')) return { unsupported: 'BLF-CRYPT $2x$' };
  if (!BCRYPT.test(text)) return 'malformed';
  if (!isUtf8(pw)) return 'mismatch';
  const computed = await bcryptInPool(pw, text.slice(0, 29), ctx.signal);
  if (computed === null) return 'malformed';
  return secretEqual(Buffer.from(computed), Buffer.from(text)) ? 'ok' : 'mismatch';
}

/**
 * Recompute with hashRaw and the stored parameters rather than argon2.verify, which throws for
 * non-UTF-8 passwords; hashRaw takes bytes, as libsodium does in Dovecot.
 */
async function verifyArgon2(text: string, pw: Buffer): Promise<Outcome> {
  const fields = text.split('$');
  const salt = decodeBase64(fields[4] ?? '');
  const expected = decodeBase64(fields[5] ?? '');
  if (!ARGON2.test(text) || salt === null || expected === null) return 'malformed';
  let params: argon2.ParsedHashOptions;
  try {
    params = argon2.parseOptions(text);
  } catch {
    return 'malformed';
  }
  if (params.memoryCost > ARGON2_MAX_MEMORY_KIB) return 'malformed';
  const { algorithm, version, memoryCost, timeCost, parallelism } = params;
  try {
    const computed = await withNativeSlot(() =>
      argon2.hashRaw(pw, { algorithm, version, memoryCost, timeCost, parallelism, outputLen: expected.length, salt }),
    );
    return digestEqual(computed, expected) ? 'ok' : 'mismatch';
  } catch (err) {
    if (err instanceof PortierError) throw err;
    return 'malformed';
  }
}

/** crypt(): the prefix picks the algorithm, as libxcrypt does. An empty value never matches. */
export async function verifyCrypt(text: string, pw: Buffer, ctx: VerifyContext): Promise<Outcome> {
  if (text === '') return 'mismatch';
  if (text.startsWith('$5$') || text.startsWith('$6$')) return verifyShaCrypt(text, pw, ctx);
  if (text.startsWith('$1$')) return verifyMd5Crypt(text, pw, ctx);
  if (text.startsWith('$2')) return verifyBcrypt(text, pw, ctx);
  for (const [re, name] of FOREIGN_CRYPT) if (re.test(text)) return { unsupported: name };
  return 'malformed';
}

function cryptScheme(
  verify: (text: string, pw: Buffer, ctx: VerifyContext) => Promise<Outcome>,
  generate?: (pw: Buffer, opts: GenerateOptions) => Promise<string>,
): SchemeImpl {
  const impl: SchemeImpl = { encoding: 'none', rawLength: 0, verify: (raw, pw, ctx) => verify(raw.toString('utf8'), pw, ctx) };
  if (generate === undefined) return impl;
  return { ...impl, generate: async (pw, opts) => Buffer.from(await generate(pw, opts)) };
}

async function generateShaCrypt(id: '5' | '6', pw: Buffer, rounds: number | undefined): Promise<string> {
  // doveadm clamps -r into libxcrypt's range the same way.
  const r = rounds === undefined ? undefined : Math.min(SHA_CRYPT_ROUNDS_MAX, Math.max(SHA_CRYPT_ROUNDS_MIN, rounds));
  const explicit = r !== undefined && r !== SHA_CRYPT_ROUNDS_DEFAULT ? `rounds=${r}$` : '';
  const out = await shaCryptInPool(pw, `$${id}$${explicit}${cryptSalt(16, randomBytes(16))}`);
  if (out === null) throw new RangeError('invalid SHA-crypt setting');
  return out;
}

const generateMd5Crypt = (pw: Buffer): Promise<string> => md5CryptInPool(pw, cryptSalt(8, randomBytes(8)));

/** `$2y$` like Dovecot; bcryptjs clamps the cost into 4..31. */
async function generateBcrypt(pw: Buffer, opts: GenerateOptions): Promise<string> {
  if (!isUtf8(pw)) throw new RangeError('BLF-CRYPT here needs a UTF-8 password');
  const setting = bcryptSalt(opts.rounds ?? BCRYPT_DEFAULT_COST).replace(/^\$2[ab]\$/, '$2y$');
  const out = await bcryptInPool(pw, setting);
  if (out === null) throw new RangeError('invalid bcrypt setting');
  return out;
}

// Dovecot's defaults: ARGON2I m=32 MiB t=4, ARGON2ID m=64 MiB t=3; `rounds` sets t.
function argon2Generator(variant: 'i' | 'id'): (pw: Buffer, opts: GenerateOptions) => Promise<string> {
  return async (pw, opts) => {
    const algorithm = (variant === 'i' ? 1 : 2) satisfies argon2.Algorithm;
    const memoryCost = variant === 'i' ? 32_768 : 65_536;
    const timeCost = opts.rounds ?? (variant === 'i' ? 4 : 3);
    return withNativeSlot(() => argon2.hash(pw, { algorithm, memoryCost, timeCost, parallelism: 1 }));
  };
}

export const crypt = cryptScheme(verifyCrypt, generateBcrypt);
export const sha256Crypt = cryptScheme(verifyCrypt, (pw, opts) => generateShaCrypt('5', pw, opts.rounds));
export const sha512Crypt = cryptScheme(verifyCrypt, (pw, opts) => generateShaCrypt('6', pw, opts.rounds));
export const md5CryptScheme = cryptScheme(
  (text, pw, ctx) => (text.startsWith('$1$') ? verifyMd5Crypt(text, pw, ctx) : Promise.resolve('malformed' as const)),
  generateMd5Crypt,
);
export const blfCrypt = cryptScheme(verifyBcrypt, generateBcrypt);
export const argon2i = cryptScheme((text, pw) => verifyArgon2(text, pw), argon2Generator('i'));
export const argon2id = cryptScheme((text, pw) => verifyArgon2(text, pw), argon2Generator('id'));

const plainMd5 = digestScheme('md5', 16, 'hex');

/** Dovecot's `MD5`: MD5-CRYPT when the value starts with `$1$`, else PLAIN-MD5 (hex or base64). */
export const md5: SchemeImpl = {
  encoding: 'none',
  rawLength: 0,
  async verify(raw, pw, ctx) {
    const text = raw.toString('utf8');
    if (text.startsWith('$1$')) return verifyMd5Crypt(text, pw, ctx);
    const digest = text.length === 32 ? decodeHex(text) : decodeBase64(text);
    if (digest?.length !== 16) return 'malformed';
    return plainMd5.verify(digest, pw, ctx);
  },
  generate: async (pw) => Buffer.from(await generateMd5Crypt(pw)),
};
