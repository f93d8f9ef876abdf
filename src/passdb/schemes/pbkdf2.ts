/**
 * PBKDF2 and SCRAM-SHA-1/-256 stored keys (Dovecot password-scheme-pbkdf2.c / -scram.c).
 * The key derivation runs in the worker pool unless the round count is trivially small.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { cryptSalt, decodeBase64, decodeHex, digestEqual } from './encoding.js';
import { pbkdf2InPool } from './pool.js';
import type { Outcome, SchemeImpl } from './types.js';

/** Below this many rounds the derivation is cheaper than a trip to a worker. */
const INLINE_ROUNDS = 1000;
/** Stored round counts above this are treated as corrupt rather than burning a worker for minutes. */
export const MAX_PBKDF2_ROUNDS = 10_000_000;
const PBKDF2_DEFAULT_ROUNDS = 5000;
const PBKDF2_KEY_LENGTH = 20;
/** RFC 5802 §5.1 asks for at least 4096; Dovecot rejects stored SCRAM entries below it. */
const SCRAM_MIN_ROUNDS = 4096;

function derive(pw: Buffer, salt: Buffer, rounds: number, length: number, digest: 'sha1' | 'sha256', signal?: AbortSignal): Promise<Buffer> {
  if (rounds < INLINE_ROUNDS) return Promise.resolve(pbkdf2Sync(pw, salt, rounds, length, digest));
  return pbkdf2InPool({ password: pw, salt, rounds, length, digest }, signal);
}

function parseRounds(text: string | undefined, min: number): number | null {
  if (text === undefined || !/^[0-9]{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n >= min && n <= MAX_PBKDF2_ROUNDS ? n : null;
}

/** `$1$<salt>$<rounds>$<hex SHA1 key>`; the salt is used as the text it is, not decoded. */
export const pbkdf2: SchemeImpl = {
  encoding: 'none',
  rawLength: 0,
  async verify(raw, pw, ctx) {
    const fields = raw.toString('utf8').split('$');
    if (fields.length !== 5 || fields[0] !== '' || fields[1] !== '1') return 'malformed';
    const rounds = parseRounds(fields[3], 1);
    const key = decodeHex(fields[4] ?? '');
    if (rounds === null || key?.length !== PBKDF2_KEY_LENGTH) return 'malformed';
    const salt = Buffer.from(fields[2] ?? '', 'utf8');
    return digestEqual(await derive(pw, salt, rounds, PBKDF2_KEY_LENGTH, 'sha1', ctx.signal), key) ? 'ok' : 'mismatch';
  },
  async generate(pw, opts) {
    const rounds = opts.rounds ?? PBKDF2_DEFAULT_ROUNDS;
    if (rounds < 1 || rounds > MAX_PBKDF2_ROUNDS) throw new RangeError(`PBKDF2 rounds must be 1..${MAX_PBKDF2_ROUNDS}`);
    const salt = cryptSalt(16, randomBytes(16));
    const key = await derive(pw, Buffer.from(salt), rounds, PBKDF2_KEY_LENGTH, 'sha1');
    return Buffer.from(`$1$${salt}$${rounds}$${key.toString('hex')}`);
  },
};

interface ScramKeys {
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** RFC 5802 §3: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key"). */
function scramKeys(alg: 'sha1' | 'sha256', salted: Buffer): ScramKeys {
  const clientKey = createHmac(alg, salted).update('Client Key').digest();
  return {
    storedKey: createHash(alg).update(clientKey).digest(),
    serverKey: createHmac(alg, salted).update('Server Key').digest(),
  };
}

/** `iter,base64(salt),base64(StoredKey),base64(ServerKey)`; the password is not SASLprepped (Dovecot 2.3 neither). */
export function scramScheme(alg: 'sha1' | 'sha256'): SchemeImpl {
  const size = alg === 'sha1' ? 20 : 32;
  return {
    encoding: 'none',
    rawLength: 0,
    async verify(raw, pw, ctx): Promise<Outcome> {
      const fields = raw.toString('utf8').split(',');
      if (fields.length !== 4) return 'malformed';
      const rounds = parseRounds(fields[0], SCRAM_MIN_ROUNDS);
      const salt = decodeBase64(fields[1] ?? '');
      const storedKey = decodeBase64(fields[2] ?? '');
      const serverKey = decodeBase64(fields[3] ?? '');
      if (rounds === null || salt === null || storedKey?.length !== size || serverKey?.length !== size) return 'malformed';
      const keys = scramKeys(alg, await derive(pw, salt, rounds, size, alg, ctx.signal));
      return digestEqual(keys.storedKey, storedKey) ? 'ok' : 'mismatch';
    },
    async generate(pw, opts) {
      const rounds = Math.max(SCRAM_MIN_ROUNDS, opts.rounds ?? SCRAM_MIN_ROUNDS);
      if (rounds > MAX_PBKDF2_ROUNDS) throw new RangeError(`SCRAM rounds must be at most ${MAX_PBKDF2_ROUNDS}`);
      const salt = randomBytes(16);
      const keys = scramKeys(alg, await derive(pw, salt, rounds, size, alg));
      const b64 = (b: Buffer): string => b.toString('base64');
      return Buffer.from(`${rounds},${b64(salt)},${b64(keys.storedKey)},${b64(keys.serverKey)}`);
    },
  };
}
