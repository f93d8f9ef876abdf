/** `{SCHEME}value` parsing, malformed and unknown stored values, credentialsFor. */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  closeHashPool,
  credentialsFor,
  hmacMd5FromContext,
  parseStored,
  SCHEME_NAMES,
  verifyPassword,
} from '../../../../src/passdb/schemes/index.js';

afterAll(closeHashPool);

const opts = { defaultScheme: 'PLAIN', user: 'alice' };
const PW = Buffer.from('pässword!');

describe('parseStored', () => {
  it('splits the prefix, upper-cases the scheme and keeps suffixes', () => {
    expect(parseStored('{sha256.hex}abc', 'plain')).toEqual({ scheme: 'SHA256.HEX', value: 'abc' });
    expect(parseStored('{PLAIN}{x}y', 'plain')).toEqual({ scheme: 'PLAIN', value: '{x}y' });
    expect(parseStored('{}abc', 'plain')).toEqual({ scheme: '', value: 'abc' });
  });

  it('falls back to the default scheme', () => {
    expect(parseStored('secret', 'clear')).toEqual({ scheme: 'CLEAR', value: 'secret' });
    expect(parseStored('{no-close', 'plain')).toEqual({ scheme: 'PLAIN', value: '{no-close' });
    expect(parseStored('', 'sha512-crypt')).toEqual({ scheme: 'SHA512-CRYPT', value: '' });
  });

  it('treats a bare $1$ value as MD5-CRYPT and cuts what follows the hash (Dovecot)', () => {
    expect(parseStored('$1$salt$hash$junk', 'plain')).toEqual({ scheme: 'MD5-CRYPT', value: '$1$salt$hash' });
    expect(parseStored('$1$nosep', 'plain')).toEqual({ scheme: 'PLAIN', value: '$1$nosep' });
  });

  it('lists the scheme names', () => {
    expect(SCHEME_NAMES).toContain('SHA512-CRYPT');
    expect(SCHEME_NAMES).toContain('CLEARTEXT');
  });
});

describe('unreadable stored values are reported, never thrown', () => {
  it.each([
    ['{NOPE}x', 'NOPE'],
    ['{}x', ''],
    ['{SHA256.ROT13}x', 'SHA256.ROT13'],
    ['{PLAIN-MD4}51b834b7c1ef0b59ea50888fcb39ace2', 'PLAIN-MD4'],
    ['{CRYPT}$y$j9T$F5Jx5fExrKuJp1hq8eG3x1$Cz3A3d4UBRb4KcXsfBYnBv7yQuH9Pq2o7Oa6Oen1rD3', 'YESCRYPT'],
    ['{CRYPT}abJnggxhB/yWI', 'DES-CRYPT'],
    ['{DES-CRYPT}abJnggxhB/yWI', 'DES-CRYPT'],
    ['{BLF-CRYPT}$2x$05$7x/V2S5uE3YFDT9x7LUrj.eQx1/N186qzsFkyDpKHIk8Iz.RHZhkO', 'BLF-CRYPT $2x$'],
  ])('%s → unknown-scheme %s', async (stored, scheme) => {
    expect(await verifyPassword(stored, PW, opts)).toEqual({ error: 'unknown-scheme', scheme });
  });

  it.each([
    '{SHA256}not base64!',
    '{SHA256}QUJD',
    '{SHA256.HEX}LJAZVk9zV3gWCCg+WjvdgGj03o86zhHKrmXlHdNqImI=',
    '{PLAIN-MD5}4f4bf2244b281154e152b3c05ca90f2',
    '{SSHA}hl2KACSs7x2ufZnAshWAow6eJSY=',
    '{SMD5}ZYJLuwX+sYjYYQ636XsMDg==',
    '{CRAM-MD5}4b58891ee337e15b',
    '{SHA512-CRYPT}$6$w1O/IxybnJqbyGyC$tooshort',
    '{SHA512-CRYPT}$6$rounds=10$abc$v3iou.t3EGwCHEjwU6Ky8KfFVWvjVYqU68005iO6JdpJbNC/fkIFqpznZtoaQ.8pQZ/gxSIOBuQ5DsoM4GOyo.',
    '{SHA512-CRYPT}garbage',
    '{SHA256-CRYPT}$5$',
    '{MD5-CRYPT}$1$4iJFk.4n$',
    '{MD5-CRYPT}$6$w1O/IxybnJqbyGyC$x',
    '{MD5-CRYPT}$1$toolongsalt$uTpJhH2dalcZEOIamHplI.',
    '{BLF-CRYPT}$2y$05$short',
    '{BLF-CRYPT}$2y$99$7x/V2S5uE3YFDT9x7LUrj.eQx1/N186qzsFkyDpKHIk8Iz.RHZhkO',
    '{BLF-CRYPT}$6$w1O/IxybnJqbyGyC$x',
    '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$yJWtycatkozbth4HurCNfA',
    '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$%%%$9xHW3Mz0BgwCKQy1Q1o7ssdPr2v/4KcPfl6nkQyX94c',
    '{ARGON2ID}$argon2d$v=19$m=65536,t=3,p=1$yJWtycatkozbth4HurCNfA$9xHW3Mz0BgwCKQy1Q1o7ssdPr2v/4KcPfl6nkQyX94c',
    '{ARGON2ID}$argon2id$v=19$m=99999999999,t=3,p=1$yJWtycatkozbth4HurCNfA$9xHW3Mz0BgwCKQy1Q1o7ssdPr2v/4KcPfl6nkQyX94c',
    '{ARGON2I}$argon2i$v=19$m=0,t=0,p=0$zKZKOeMUhoMdBNu7pAUbgA$HoWQOILFld/WvZcCcqQpXuxHIkLUTVIeqAEi8TCJuCs',
    '{PBKDF2}$1$salt$5000$b127',
    '{PBKDF2}$1$salt$0$b127a12606ba39991f35ef03508bf60a9de1ef8f',
    '{PBKDF2}$1$salt$99999999999$b127a12606ba39991f35ef03508bf60a9de1ef8f',
    '{PBKDF2}$2$salt$5000$b127a12606ba39991f35ef03508bf60a9de1ef8f',
    '{PBKDF2}df37d//fj7DlpLE.$5000$b127a12606ba39991f35ef03508bf60a9de1ef8f',
    '{SCRAM-SHA-256}4096,wSJIjuafSUfnW/ATVdn2lA==,LEMU',
    '{SCRAM-SHA-256}1000,wSJIjuafSUfnW/ATVdn2lA==,LEMU/rAwTHfuYNuHGICzDTxNLuh1uyT3mxEOVE7N6bM=,vyV6SoxKMIDhyB4O/3QlbUBVB+KONphI0R/+NyF/SRo=',
    '{SCRAM-SHA-1}4096,wSJIjuafSUfnW/ATVdn2lA==,LEMU/rAwTHfuYNuHGICzDTxNLuh1uyT3mxEOVE7N6bM=,vyV6SoxKMIDhyB4O/3QlbUBVB+KONphI0R/+NyF/SRo=',
    '{SCRAM-SHA-256}x,y,z,w',
    '{PLAIN-TRUNC}abc',
    '{MD5}zz',
    '{CRYPT}$2y$05$short',
    '{CRYPT}*0',
    '{PLAIN.B64}!!!',
  ])('%s → malformed', async (stored) => {
    const result = await verifyPassword(stored, PW, opts);
    expect(result).toMatchObject({ error: 'malformed' });
  });

  it('an empty CRYPT value is a mismatch, as crypt() gives in Dovecot', async () => {
    expect(await verifyPassword('{CRYPT}', PW, opts)).toBe('mismatch');
  });

  it('random stored strings and random password bytes never throw', async () => {
    const prefixes = ['', ...SCHEME_NAMES.map((s) => `{${s}}`), '{SHA256.HEX}', '$1$', '{CRYPT}$6$', '{CRYPT}$2y$05$'];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...prefixes), fc.string({ maxLength: 120 }), fc.uint8Array({ maxLength: 100 }), async (prefix, body, pw) => {
        const result = await verifyPassword(prefix + body, Buffer.from(pw), opts);
        expect(result === 'ok' || result === 'mismatch' || typeof result === 'object').toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});

describe('credentialsFor', () => {
  const challenge = Buffer.from('<1896.697170952@postoffice.reston.mci.net>');
  const hmac = (key: Buffer): Buffer => createHmac('md5', key).update(challenge).digest();

  it('gives the cleartext only from cleartext schemes', () => {
    expect(credentialsFor('{PLAIN}pässword!', 'PLAIN', 'PLAIN')?.equals(PW)).toBe(true);
    expect(credentialsFor('pässword!', 'cleartext', 'PLAIN')?.equals(PW)).toBe(true);
    expect(credentialsFor('{PLAIN.B64}cMOkc3N3b3JkIQ==', 'PLAIN', 'PLAIN')?.equals(PW)).toBe(true);
    expect(credentialsFor('{SHA256}LJAZVk9zV3gWCCg+WjvdgGj03o86zhHKrmXlHdNqImI=', 'PLAIN', 'PLAIN')).toBeNull();
    expect(credentialsFor('{CRAM-MD5}4b58891ee337e15b9e778eb9c9eb97a3f3d074a0629cc0322a0470f9d53a0b71', 'PLAIN', 'PLAIN')).toBeNull();
  });

  it('gives a CRAM-MD5 context from a stored context or a cleartext', () => {
    for (const stored of ['{CRAM-MD5}4b58891ee337e15b9e778eb9c9eb97a3f3d074a0629cc0322a0470f9d53a0b71', '{HMAC-MD5}4b58891ee337e15b9e778eb9c9eb97a3f3d074a0629cc0322a0470f9d53a0b71', '{PLAIN}pässword!']) {
      const ctx = credentialsFor(stored, 'PLAIN', 'CRAM-MD5');
      expect(ctx?.length, stored).toBe(32);
      expect(ctx !== null && hmacMd5FromContext(ctx, challenge)?.equals(hmac(PW))).toBe(true);
    }
  });

  it('null for schemes that cannot give it, unknown schemes and malformed values', () => {
    expect(credentialsFor('{SSHA}hl2KACSs7x2ufZnAshWAow6eJSbndV2l', 'PLAIN', 'CRAM-MD5')).toBeNull();
    expect(credentialsFor('{NOPE}x', 'PLAIN', 'CRAM-MD5')).toBeNull();
    expect(credentialsFor('{CRAM-MD5}abc', 'PLAIN', 'CRAM-MD5')).toBeNull();
  });
});
