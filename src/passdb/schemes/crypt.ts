/**
 * SHA-crypt (`$5$`, `$6$`, Drepper's spec) and MD5-crypt (`$1$`, PHK) over password bytes.
 * Written here rather than taken from unixcrypt/apache-md5: those take JS strings while Dovecot
 * (libxcrypt) hashes bytes and IMAP passwords need not be UTF-8, and unixcrypt 3.0.4 is wrong when
 * the password length is a multiple of the digest size (32/64 bytes). Tests check against libxcrypt.
 * Pure and synchronous (~5 ms per SHA512-CRYPT verify): callers run it in the hash worker pool.
 */
import { createHash, hash } from 'node:crypto';
import { cryptB64 } from './encoding.js';

export const SHA_CRYPT_ROUNDS_DEFAULT = 5000;
/** libxcrypt rejects (not clamps) rounds outside this range when verifying. */
export const SHA_CRYPT_ROUNDS_MIN = 1000;
export const SHA_CRYPT_ROUNDS_MAX = 999_999_999;
const SHA_CRYPT_SALT_MAX = 16;
const MD5_CRYPT_SALT_MAX = 8;

export interface ShaCryptSetting {
  readonly id: '5' | '6';
  readonly rounds: number;
  /** `rounds=` was spelled out; it is then repeated in the output even when it is 5000. */
  readonly explicitRounds: boolean;
  readonly salt: string;
}

const SHA_CRYPT = /^\$([56])\$(?:rounds=([1-9][0-9]{0,9})\$)?([^$:\n]*)(?:\$([./0-9A-Za-z]*))?$/;
const MD5_CRYPT = /^\$1\$([^$]*)(?:\$([./0-9A-Za-z]*))?$/;

/** Parse `$6$[rounds=N$]salt[$hash]`; null when libxcrypt would refuse it. */
export function parseShaCrypt(text: string): { setting: ShaCryptSetting; hash: string | undefined } | null {
  const m = SHA_CRYPT.exec(text);
  if (m === null) return null;
  const id = m[1] === '5' ? '5' : '6';
  const rounds = m[2] === undefined ? SHA_CRYPT_ROUNDS_DEFAULT : Number(m[2]);
  const salt = m[3] ?? '';
  // libxcrypt refuses `rounds=` without digits or with leading zeros rather than reading it as salt.
  if (m[2] === undefined && salt.startsWith('rounds=')) return null;
  if (rounds < SHA_CRYPT_ROUNDS_MIN || rounds > SHA_CRYPT_ROUNDS_MAX) return null;
  if (Buffer.byteLength(salt) > SHA_CRYPT_SALT_MAX) return null;
  return { setting: { id, rounds, explicitRounds: m[2] !== undefined, salt }, hash: m[4] };
}

/** Parse `$1$salt[$hash]`; null when the salt is longer than MD5-crypt uses. */
export function parseMd5Crypt(text: string): { salt: string; hash: string | undefined } | null {
  const m = MD5_CRYPT.exec(text);
  if (m === null) return null;
  const salt = m[1] ?? '';
  if (Buffer.byteLength(salt) > MD5_CRYPT_SALT_MAX) return null;
  return { salt, hash: m[2] };
}

export const SHA_CRYPT_HASH_LENGTH = { '5': 43, '6': 86 } as const;
export const MD5_CRYPT_HASH_LENGTH = 22;

// Byte triples of the final digest, in output order (Drepper's spec, step 22).
const SHA256_ORDER = [[0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29]] as const;
const SHA512_ORDER = [
  [0, 21, 42], [22, 43, 1], [44, 2, 23], [3, 24, 45], [25, 46, 4], [47, 5, 26], [6, 27, 48],
  [28, 49, 7], [50, 8, 29], [9, 30, 51], [31, 52, 10], [53, 11, 32], [12, 33, 54], [34, 55, 13],
  [56, 14, 35], [15, 36, 57], [37, 58, 16], [59, 17, 38], [18, 39, 60], [40, 61, 19], [62, 20, 41],
] as const;
const MD5_ORDER = [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]] as const;

/** The full crypt string (`$6$...$hash`) for `password` under `setting`. */
export function shaCrypt(password: Uint8Array, setting: ShaCryptSetting): string {
  const alg = setting.id === '5' ? 'sha256' : 'sha512';
  const size = setting.id === '5' ? 32 : 64;
  const pw = Buffer.from(password.buffer, password.byteOffset, password.byteLength);
  const salt = Buffer.from(setting.salt, 'utf8');
  const len = pw.length;

  const b = createHash(alg).update(pw).update(salt).update(pw).digest();
  const a = createHash(alg).update(pw).update(salt);
  for (let n = len; n > 0; n -= size) a.update(b.subarray(0, Math.min(n, size)));
  for (let n = len; n > 0; n >>>= 1) a.update(n & 1 ? b : pw);
  const digestA = a.digest();

  const dp = createHash(alg);
  for (let i = 0; i < len; i++) dp.update(pw);
  const p = repeatTo(dp.digest(), len);
  const ds = createHash(alg);
  for (let i = 0; i < 16 + (digestA[0] ?? 0); i++) ds.update(salt);
  const s = repeatTo(ds.digest(), salt.length);

  const c = rounds(alg, digestA, p, s, setting.rounds);
  let out = `$${setting.id}$`;
  if (setting.explicitRounds) out += `rounds=${setting.rounds}$`;
  out += `${setting.salt}$`;
  if (setting.id === '5') {
    for (const [x, y, z] of SHA256_ORDER) out += cryptB64(at(c, x), at(c, y), at(c, z), 4);
    out += cryptB64(0, at(c, 31), at(c, 30), 3);
  } else {
    for (const [x, y, z] of SHA512_ORDER) out += cryptB64(at(c, x), at(c, y), at(c, z), 4);
    out += cryptB64(0, 0, at(c, 63), 2);
  }
  return out;
}

/** PHK's MD5-crypt: `$1$salt$hash`; the salt is cut at 8 bytes as in Dovecot's password_generate_md5_crypt. */
export function md5Crypt(password: Uint8Array, saltText: string): string {
  const pw = Buffer.from(password.buffer, password.byteOffset, password.byteLength);
  const salt = Buffer.from(saltText, 'utf8').subarray(0, MD5_CRYPT_SALT_MAX);
  const magic = Buffer.from('$1$');
  const alt = createHash('md5').update(pw).update(salt).update(pw).digest();
  const ctx = createHash('md5').update(pw).update(magic).update(salt);
  for (let n = pw.length; n > 0; n -= 16) ctx.update(alt.subarray(0, Math.min(n, 16)));
  // Quirk of the original: a zero byte for set bits, the first password byte for clear ones.
  for (let n = pw.length; n > 0; n >>>= 1) ctx.update(n & 1 ? ZERO_BYTE : pw.subarray(0, 1));
  const c = rounds('md5', ctx.digest(), pw, salt, 1000);
  let out = `$1$${salt.toString('utf8')}$`;
  for (const [x, y, z] of MD5_ORDER) out += cryptB64(at(c, x), at(c, y), at(c, z), 4);
  return out + cryptB64(0, 0, at(c, 11), 2);
}

const ZERO_BYTE = Buffer.alloc(1);

/**
 * The shared stretching loop of both algorithms: round i hashes (P|C)(S if i%3)(P if i%7)(C|P).
 * One-shot crypto.hash over a reused scratch buffer is ~25 % faster than a Hash object per round.
 */
function rounds(alg: string, start: Buffer, p: Buffer, s: Buffer, count: number): Buffer {
  let c = start;
  const scratch = Buffer.allocUnsafe(2 * c.length + 2 * p.length + s.length);
  for (let i = 0; i < count; i++) {
    let n = i & 1 ? p.copy(scratch, 0) : c.copy(scratch, 0);
    if (i % 3 !== 0) n += s.copy(scratch, n);
    if (i % 7 !== 0) n += p.copy(scratch, n);
    n += i & 1 ? c.copy(scratch, n) : p.copy(scratch, n);
    c = hash(alg, scratch.subarray(0, n), 'buffer');
  }
  return c;
}

/** `digest` repeated to exactly `length` bytes (steps 16 and 20 of Drepper's spec). */
function repeatTo(digest: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let off = 0; off < length; off += digest.length) digest.copy(out, off, 0, Math.min(digest.length, length - off));
  return out;
}

function at(buf: Buffer, i: number): number {
  return buf[i] ?? 0;
}
