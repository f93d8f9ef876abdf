/**
 * The cheap schemes: cleartext, plain and salted digests, DIGEST-MD5 and the CRAM-MD5 context.
 * Formulas follow Dovecot 2.3 password-scheme.c; each verifies in well under a millisecond.
 */
import { createHash, randomBytes } from 'node:crypto';
import { cramMd5Context, CRAM_MD5_CONTEXT_LENGTH } from './cram-md5.js';
import { digestEqual, secretEqual } from './encoding.js';
import type { Outcome, SchemeImpl } from './types.js';

/** Salt bytes for new SSHA, SSHA256, SSHA512 and SMD5 values (doveadm uses 4; any length verifies). */
const SALT_BYTES = 16;

const result = (ok: boolean): Outcome => (ok ? 'ok' : 'mismatch');

export const plain: SchemeImpl = {
  encoding: 'none',
  rawLength: 0,
  verify: (raw, pw) => result(secretEqual(raw, pw)),
  generate: (pw) => Buffer.from(pw),
};

/** `<length>-<password>`: a password stored truncated also accepts longer input with that prefix. */
export const plainTrunc: SchemeImpl = {
  encoding: 'none',
  rawLength: 0,
  verify(raw, pw) {
    const m = /^([0-9]+)-/.exec(raw.toString('latin1'));
    if (m === null || m[1] === undefined) return 'malformed';
    const truncLen = Number(m[1]);
    const stored = raw.subarray(m[0].length);
    if (stored.length === truncLen && pw.length >= truncLen) return result(secretEqual(stored, pw.subarray(0, truncLen)));
    return result(secretEqual(stored, pw));
  },
};

/** Unsalted digest: the stored value is H(password). */
export function digestScheme(alg: string, length: number, encoding: 'hex' | 'base64'): SchemeImpl {
  const generate = (pw: Buffer): Buffer => createHash(alg).update(pw).digest();
  return { encoding, rawLength: length, verify: (raw, pw) => result(digestEqual(generate(pw), raw)), generate };
}

/** Salted digest: base64(H(password ‖ salt) ‖ salt). */
export function saltedScheme(alg: string, length: number): SchemeImpl {
  const digest = (pw: Buffer, salt: Buffer): Buffer => createHash(alg).update(pw).update(salt).digest();
  return {
    encoding: 'base64',
    rawLength: 0,
    verify(raw, pw) {
      if (raw.length <= length) return 'malformed';
      return result(digestEqual(digest(pw, raw.subarray(length)), raw.subarray(0, length)));
    },
    generate(pw) {
      const salt = randomBytes(SALT_BYTES);
      return Buffer.concat([digest(pw, salt), salt]);
    },
  };
}

/** MD5(`user:realm:password`); `user@realm` is split at the last `@` (Dovecot's digest_md5_generate). */
export function digestMd5(pw: Buffer, userName: string): Buffer {
  const at = userName.lastIndexOf('@');
  const user = at < 0 ? userName : userName.slice(0, at);
  const realm = at < 0 ? '' : userName.slice(at + 1);
  return createHash('md5').update(`${user}:${realm}:`, 'utf8').update(pw).digest();
}

export const digestMd5Scheme: SchemeImpl = {
  encoding: 'hex',
  rawLength: 16,
  verify: (raw, pw, ctx) => result(digestEqual(digestMd5(pw, ctx.user), raw)),
  generate(pw, opts) {
    if (opts.user === undefined) throw new RangeError('DIGEST-MD5 needs the user name');
    return digestMd5(pw, opts.user);
  },
};

export const cramMd5Scheme: SchemeImpl = {
  encoding: 'hex',
  rawLength: CRAM_MD5_CONTEXT_LENGTH,
  verify: (raw, pw) => result(digestEqual(cramMd5Context(pw), raw)),
  generate: (pw) => cramMd5Context(pw),
};
