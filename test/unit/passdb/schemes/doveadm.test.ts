/**
 * Fresh vectors from the installed Dovecot: doveadm pw output must verify here, and our
 * hashPassword output must pass `doveadm pw -t`. Passwords cover ASCII, non-ASCII UTF-8 and
 * bytes that are not UTF-8 (IMAP literals may carry those; Dovecot hashes bytes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeHashPool, hashPassword, verifyPassword } from '../../../../src/passdb/schemes/index.js';
import { doveadmHash, doveadmVerifies } from './doveadm.js';

afterAll(closeHashPool);

const PASSWORDS: ReadonlyArray<readonly [string, Buffer]> = [
  ['ascii', Buffer.from('Secret-123')],
  ['utf-8', Buffer.from('Grüße, 密码 ✓')],
  ['non-utf-8', Buffer.from([0x70, 0xe4, 0x73, 0x73, 0xff, 0xfe, 0x21])],
  ['64 bytes', Buffer.from('0123456789abcdef'.repeat(4))],
];

/** Everything doveadm can generate that portier verifies. */
const SCHEMES = [
  'PLAIN', 'CLEAR', 'CLEARTEXT', 'CRYPT', 'MD5', 'MD5-CRYPT', 'SHA256-CRYPT', 'SHA512-CRYPT', 'BLF-CRYPT',
  'ARGON2I', 'ARGON2ID', 'PLAIN-MD5', 'LDAP-MD5', 'SHA', 'SHA1', 'SHA256', 'SHA512', 'SMD5', 'SSHA',
  'SSHA256', 'SSHA512', 'DIGEST-MD5', 'CRAM-MD5', 'HMAC-MD5', 'PBKDF2', 'SCRAM-SHA-1', 'SCRAM-SHA-256',
  'SHA256.HEX', 'SHA512.B64', 'SSHA.HEX', 'SSHA512.BASE64', 'PLAIN-MD5.B64', 'LDAP-MD5.HEX', 'CRAM-MD5.B64',
  'PLAIN.B64', 'PLAIN.HEX',
] as const;

/** doveadm writes these raw, and a stored value is text: non-UTF-8 bytes cannot survive that. */
const RAW_TEXT = new Set(['PLAIN', 'CLEAR', 'CLEARTEXT']);
/** bcrypt (doveadm's CRYPT default too) runs on bcryptjs, which takes strings: non-UTF-8 cannot match. */
const BCRYPT = new Set(['BLF-CRYPT', 'CRYPT']);

const USER = 'alice@example.com';
const wrong = (pw: Buffer): Buffer => Buffer.concat([pw, Buffer.from('x')]);

describe('doveadm pw output verifies', () => {
  for (const scheme of SCHEMES) {
    for (const [label, pw] of PASSWORDS) {
      if (label === 'non-utf-8' && RAW_TEXT.has(scheme)) continue;
      it(`${scheme} (${label})`, async () => {
        const stored = doveadmHash(scheme, pw, { user: USER });
        const opts = { defaultScheme: 'PLAIN', user: USER };
        const expected = label === 'non-utf-8' && BCRYPT.has(scheme) ? 'mismatch' : 'ok';
        expect(await verifyPassword(stored, pw, opts), stored).toBe(expected);
        expect(await verifyPassword(stored, wrong(pw), opts), stored).toBe('mismatch');
      });
    }
  }

  it('DIGEST-MD5 with a plain user name (empty realm) and with user@domain@realm', async () => {
    const pw = Buffer.from('Grüße');
    for (const user of ['alice', 'alice@example.com@realm']) {
      const stored = doveadmHash('DIGEST-MD5', pw, { user });
      expect(await verifyPassword(stored, pw, { defaultScheme: 'PLAIN', user })).toBe('ok');
    }
  });

  it.each([
    ['SHA512-CRYPT', 1000],
    ['SHA512-CRYPT', 12345],
    ['SHA256-CRYPT', 1000],
    ['SHA256-CRYPT', 20000],
    ['BLF-CRYPT', 4],
    ['BLF-CRYPT', 7],
    ['ARGON2ID', 2],
    ['ARGON2I', 3],
    ['PBKDF2', 1],
    ['PBKDF2', 999],
    ['PBKDF2', 12000],
  ] as const)('%s with -r %i', async (scheme, rounds) => {
    const pw = Buffer.from('pässword!');
    const stored = doveadmHash(scheme, pw, { rounds });
    expect(await verifyPassword(stored, pw, { defaultScheme: 'PLAIN', user: 'u' }), stored).toBe('ok');
    expect(await verifyPassword(stored, wrong(pw), { defaultScheme: 'PLAIN', user: 'u' }), stored).toBe('mismatch');
  });

  it.each([
    ['80 ASCII characters', Buffer.from('0123456789'.repeat(8))],
    ['40 two-byte characters', Buffer.from('ä'.repeat(40))],
  ])('BLF-CRYPT truncates at 72 bytes, like Dovecot (%s)', async (_label, long) => {
    const stored = doveadmHash('BLF-CRYPT', long);
    const opts = { defaultScheme: 'PLAIN', user: 'u' };
    expect(await verifyPassword(stored, long, opts)).toBe('ok');
    expect(await verifyPassword(stored, Buffer.concat([long.subarray(0, 72), Buffer.from('different tail')]), opts)).toBe('ok');
    expect(await verifyPassword(stored, long.subarray(0, 71), opts)).toBe('mismatch');
    const ours = await hashPassword('BLF-CRYPT', long);
    expect(doveadmVerifies(ours, Buffer.concat([long.subarray(0, 72), Buffer.from('xyz')]))).toBe(true);
  });

  it('PLAIN-TRUNC agrees with doveadm -t', async () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['{PLAIN-TRUNC}3-abc', 'abcdef'],
      ['{PLAIN-TRUNC}3-abc', 'abc'],
      ['{PLAIN-TRUNC}3-abc', 'abx'],
      ['{PLAIN-TRUNC}3-abc', 'ab'],
      ['{PLAIN-TRUNC}10-abc', 'abc'],
      ['{PLAIN-TRUNC}10-abc', 'abcd'],
    ];
    for (const [stored, pw] of cases) {
      const ours = await verifyPassword(stored, Buffer.from(pw), { defaultScheme: 'PLAIN', user: 'u' });
      expect(ours === 'ok', `${stored} / ${pw}`).toBe(doveadmVerifies(stored, Buffer.from(pw)));
    }
  });
});

describe('hashPassword output passes doveadm pw -t', () => {
  const GENERATED = [
    'PLAIN', 'CLEARTEXT', 'CRYPT', 'MD5', 'MD5-CRYPT', 'SHA256-CRYPT', 'SHA512-CRYPT', 'BLF-CRYPT', 'ARGON2I',
    'ARGON2ID', 'PLAIN-MD5', 'LDAP-MD5', 'SHA', 'SHA256', 'SHA512', 'SMD5', 'SSHA', 'SSHA256', 'SSHA512',
    'DIGEST-MD5', 'CRAM-MD5', 'PBKDF2', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'SHA256.HEX', 'SSHA512.HEX', 'PLAIN.B64',
  ] as const;

  for (const scheme of GENERATED) {
    for (const [label, pw] of PASSWORDS) {
      it(`${scheme} (${label})`, async () => {
        if (label === 'non-utf-8' && BCRYPT.has(scheme)) {
          await expect(hashPassword(scheme, pw)).rejects.toThrow(RangeError);
          return;
        }
        const stored = await hashPassword(scheme, pw, { user: USER });
        expect(stored.startsWith(`{${scheme}`), stored).toBe(true);
        expect(await verifyPassword(stored, pw, { defaultScheme: 'PLAIN', user: USER }), stored).toBe('ok');
        expect(await verifyPassword(stored, wrong(pw), { defaultScheme: 'PLAIN', user: USER }), stored).toBe('mismatch');
        expect(doveadmVerifies(stored, pw, { user: USER }), stored).toBe(true);
        expect(doveadmVerifies(stored, wrong(pw), { user: USER }), stored).toBe(false);
      });
    }
  }

  it.each([
    ['SHA512-CRYPT', 7000, /^\{SHA512-CRYPT\}\$6\$rounds=7000\$/],
    ['SHA256-CRYPT', 1000, /^\{SHA256-CRYPT\}\$5\$rounds=1000\$/],
    ['SHA512-CRYPT', 10, /^\{SHA512-CRYPT\}\$6\$rounds=1000\$/],
    ['BLF-CRYPT', 6, /^\{BLF-CRYPT\}\$2y\$06\$/],
    ['ARGON2ID', 4, /^\{ARGON2ID\}\$argon2id\$v=19\$m=65536,t=4,p=1\$/],
    ['PBKDF2', 777, /^\{PBKDF2\}\$1\$[./0-9A-Za-z]{16}\$777\$[0-9a-f]{40}$/],
    ['SCRAM-SHA-256', 5000, /^\{SCRAM-SHA-256\}5000,/],
    ['SCRAM-SHA-1', 100, /^\{SCRAM-SHA-1\}4096,/],
  ] as const)('%s with rounds %i', async (scheme, rounds, shape) => {
    const pw = Buffer.from('pässword!');
    const stored = await hashPassword(scheme, pw, { rounds });
    expect(stored).toMatch(shape);
    expect(doveadmVerifies(stored, pw)).toBe(true);
  });

  it('a non-UTF-8 cleartext is written base64', async () => {
    expect(await hashPassword('PLAIN', Buffer.from([0x61, 0xff]))).toBe('{PLAIN.B64}Yf8=');
  });

  it('refuses what it cannot generate', async () => {
    await expect(hashPassword('DES-CRYPT', Buffer.from('x'))).rejects.toThrow(RangeError);
    await expect(hashPassword('PLAIN-TRUNC', Buffer.from('x'))).rejects.toThrow(RangeError);
    await expect(hashPassword('NOPE', Buffer.from('x'))).rejects.toThrow(RangeError);
    await expect(hashPassword('SHA256.ROT13', Buffer.from('x'))).rejects.toThrow(RangeError);
    await expect(hashPassword('DIGEST-MD5', Buffer.from('x'))).rejects.toThrow(RangeError);
    await expect(hashPassword('SHA512-CRYPT', Buffer.from('x'), { rounds: 0 })).rejects.toThrow(RangeError);
    await expect(hashPassword('SHA512-CRYPT', Buffer.from('x'), { rounds: 1.5 })).rejects.toThrow(RangeError);
  });
});
