/**
 * Dovecot 2.3.19.1 `doveadm pw` vectors from research/ecosystem.md Appendix A
 * (password `pässword!` in UTF-8, user `alice`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { closeHashPool, verifyPassword } from '../../../../src/passdb/schemes/index.js';

const PASSWORD = Buffer.from('pässword!', 'utf8');
const opts = { defaultScheme: 'PLAIN', user: 'alice' };

export const APPENDIX_A = [
  '{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$zKZKOeMUhoMdBNu7pAUbgA$HoWQOILFld/WvZcCcqQpXuxHIkLUTVIeqAEi8TCJuCs',
  '{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$yJWtycatkozbth4HurCNfA$9xHW3Mz0BgwCKQy1Q1o7ssdPr2v/4KcPfl6nkQyX94c',
  '{ARGON2ID}$argon2id$v=19$m=262144,t=3,p=1$2L1kBcy07MqWpzxs8kTGuA$3E2AgqJfdpAY744+kNHZ7ZinNXq+2eC4Lx/cquhAw44',
  '{BLF-CRYPT}$2y$05$7x/V2S5uE3YFDT9x7LUrj.eQx1/N186qzsFkyDpKHIk8Iz.RHZhkO',
  '{BLF-CRYPT}$2y$06$uNcQQKWtMBHnGyrI8QXAmeNE.RoZXBgaIPBwLiltYdcDOhxeHnWjy',
  '{SHA512-CRYPT}$6$w1O/IxybnJqbyGyC$LfdNQiBXSow1exYu6DPtkyilZ3M0KiujChOC6x8aCPGm9tUlWVLfkesbm/A4crCIh0BEFoll3wUcZ3kZR.UKV/',
  '{SHA512-CRYPT}$6$rounds=10000$f8QYgkKWwO.iGLvz$v3iou.t3EGwCHEjwU6Ky8KfFVWvjVYqU68005iO6JdpJbNC/fkIFqpznZtoaQ.8pQZ/gxSIOBuQ5DsoM4GOyo.',
  '{SHA256-CRYPT}$5$11jbIL1yp7Gtlh6k$/p9vcZNaxUvMHqE2VeHkFgS5NWpZNDnjgd7oWeSGfc9',
  '{MD5-CRYPT}$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.',
  '{SSHA}hl2KACSs7x2ufZnAshWAow6eJSbndV2l',
  '{SSHA256}8RmV50c08L5YNu6pMFsjfr70K8EY+AYUxZMv+duDdMyWDW0u',
  '{SSHA512}gHdrgBMejrDc8vUvYKTa7XNMs4Rqe3PAU/Zkf5sPBo9qyMGywknUIKd94SLn5VpbaX4TgTGSA6ApA3ums2wwAzovihk=',
  '{PBKDF2}$1$df37d//fj7DlpLE.$5000$b127a12606ba39991f35ef03508bf60a9de1ef8f',
  '{CRAM-MD5}4b58891ee337e15b9e778eb9c9eb97a3f3d074a0629cc0322a0470f9d53a0b71',
  '{SHA512}OOIuGXVYWYG28Cp3kXXQYEOuZf4gwwM/yg8M+MLMGvYn+FBE/oyW0plEYvvhbAQC7YTgNSEj/kfEHtChgFTlhw==',
  '{SHA256}LJAZVk9zV3gWCCg+WjvdgGj03o86zhHKrmXlHdNqImI=',
  '{SMD5}ZYJLuwX+sYjYYQ636XsMDh4LAQg=',
  '{SCRAM-SHA-256}4096,wSJIjuafSUfnW/ATVdn2lA==,LEMU/rAwTHfuYNuHGICzDTxNLuh1uyT3mxEOVE7N6bM=,vyV6SoxKMIDhyB4O/3QlbUBVB+KONphI0R/+NyF/SRo=',
  '{DIGEST-MD5}6148a4194f62a19b0fe1ba2cd523b54e',
  '{PLAIN-MD5}4f4bf2244b281154e152b3c05ca90f2b',
  '{PLAIN}pässword!',
] as const;

afterAll(closeHashPool);

describe('Appendix A vectors', () => {
  it.each(APPENDIX_A)('%s verifies', async (stored) => {
    expect(await verifyPassword(stored, PASSWORD, opts)).toBe('ok');
  });

  it.each(APPENDIX_A)('%s rejects a wrong password', async (stored) => {
    expect(await verifyPassword(stored, Buffer.from('pässword?'), opts)).toBe('mismatch');
  });

  it.each(APPENDIX_A)('%s rejects the latin-1 spelling of the password without throwing', async (stored) => {
    expect(await verifyPassword(stored, Buffer.from('pässword!', 'latin1'), opts)).toBe('mismatch');
  });

  it('DIGEST-MD5 depends on the user name', async () => {
    expect(await verifyPassword('{DIGEST-MD5}6148a4194f62a19b0fe1ba2cd523b54e', PASSWORD, { ...opts, user: 'bob' })).toBe('mismatch');
  });

  it('a bare value uses the default scheme', async () => {
    expect(await verifyPassword('4f4bf2244b281154e152b3c05ca90f2b', PASSWORD, { ...opts, defaultScheme: 'plain-md5' })).toBe('ok');
    expect(await verifyPassword('$6$w1O/IxybnJqbyGyC$LfdNQiBXSow1exYu6DPtkyilZ3M0KiujChOC6x8aCPGm9tUlWVLfkesbm/A4crCIh0BEFoll3wUcZ3kZR.UKV/', PASSWORD, { ...opts, defaultScheme: 'CRYPT' })).toBe('ok');
  });

  it('scheme names are case-insensitive and CRYPT dispatches by prefix', async () => {
    for (const stored of [
      '{plain}pässword!',
      '{Clear}pässword!',
      '{CLEARTEXT}pässword!',
      '{crypt}$6$w1O/IxybnJqbyGyC$LfdNQiBXSow1exYu6DPtkyilZ3M0KiujChOC6x8aCPGm9tUlWVLfkesbm/A4crCIh0BEFoll3wUcZ3kZR.UKV/',
      '{CRYPT}$5$11jbIL1yp7Gtlh6k$/p9vcZNaxUvMHqE2VeHkFgS5NWpZNDnjgd7oWeSGfc9',
      '{CRYPT}$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.',
      '{CRYPT}$2y$05$7x/V2S5uE3YFDT9x7LUrj.eQx1/N186qzsFkyDpKHIk8Iz.RHZhkO',
      '{SHA512-CRYPT}$5$11jbIL1yp7Gtlh6k$/p9vcZNaxUvMHqE2VeHkFgS5NWpZNDnjgd7oWeSGfc9',
      '{md5}$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.',
      '{MD5}4f4bf2244b281154e152b3c05ca90f2b',
      '{hmac-md5}4b58891ee337e15b9e778eb9c9eb97a3f3d074a0629cc0322a0470f9d53a0b71',
      '$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.',
      '$1$4iJFk.4n$uTpJhH2dalcZEOIamHplI.$ignored-by-dovecot',
    ]) {
      expect(await verifyPassword(stored, PASSWORD, opts), stored).toBe('ok');
    }
  });
});
