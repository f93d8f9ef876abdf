import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { credentialsFor } from '../../../src/passdb/schemes/index.js';
import { createServerMech, verifyCramMd5, type CramMd5Credentials } from '../../../src/sasl/index.js';
import { doveadmHash } from '../passdb/schemes/doveadm.js';

// RFC 2195 §2 example.
const RFC_CHALLENGE = Buffer.from('<1896.697170952@postoffice.reston.mci.net>');
const RFC_SECRET = Buffer.from('tanstaaftanstaaf');
const RFC_CREDENTIALS: CramMd5Credentials = {
  type: 'cram-md5', authcid: 'tim', challenge: RFC_CHALLENGE, response: 'b913a602c7eda7a495b4e6e7334d3890',
};

function run(response: string): ReturnType<NonNullable<ReturnType<typeof createServerMech>>['step']> & { challenge?: Buffer } {
  const m = createServerMech('CRAM-MD5', { hostname: 'imap.example.org' });
  if (m === undefined) throw new Error('no CRAM-MD5');
  const first = m.start(null);
  if (first.kind !== 'challenge') throw new Error('expected a challenge');
  return { ...m.step(Buffer.from(response.replace('%c', first.data.toString('latin1')))), challenge: first.data };
}

describe('CRAM-MD5 (RFC 2195)', () => {
  it('verifies the RFC example from the cleartext', () => {
    expect(verifyCramMd5(RFC_CREDENTIALS, { password: RFC_SECRET })).toBe(true);
    expect(verifyCramMd5(RFC_CREDENTIALS, { password: Buffer.from('tanstaaf') })).toBe(false);
    expect(verifyCramMd5({ ...RFC_CREDENTIALS, response: RFC_CREDENTIALS.response.toUpperCase() }, { password: RFC_SECRET })).toBe(true);
    expect(verifyCramMd5({ ...RFC_CREDENTIALS, response: 'zz' }, { password: RFC_SECRET })).toBe(false);
  });

  it('verifies the RFC example from a Dovecot {CRAM-MD5} stored context (doveadm pw)', () => {
    const stored = doveadmHash('CRAM-MD5', RFC_SECRET);
    const context = credentialsFor(stored, 'PLAIN', 'CRAM-MD5');
    expect(context?.length).toBe(32);
    if (context === null) return;
    expect(verifyCramMd5(RFC_CREDENTIALS, { context })).toBe(true);
    expect(verifyCramMd5(RFC_CREDENTIALS, { context: Buffer.alloc(32) })).toBe(false);
    const plainContext = credentialsFor('{PLAIN}tanstaaftanstaaf', 'PLAIN', 'CRAM-MD5');
    expect(plainContext !== null && verifyCramMd5(RFC_CREDENTIALS, { context: plainContext })).toBe(true);
  });

  it('a server exchange: challenge shape, response parsing, verification', () => {
    const m = createServerMech('CRAM-MD5', { hostname: 'imap.example.org' });
    if (m === undefined) throw new Error('no CRAM-MD5');
    expect(m.plaintext).toBe(false);
    const first = m.start(null);
    if (first.kind !== 'challenge') throw new Error('expected a challenge');
    expect(first.data.toString()).toMatch(/^<[0-9]+\.[0-9]+@imap\.example\.org>$/);
    const digest = createHmac('md5', RFC_SECRET).update(first.data).digest('hex');
    const last = m.step(Buffer.from(`tim smith ${digest.toUpperCase()}`));
    if (last.kind !== 'done' || last.credentials.type !== 'cram-md5') throw new Error(JSON.stringify(last));
    expect(last.credentials).toEqual({ type: 'cram-md5', authcid: 'tim smith', challenge: first.data, response: digest });
    expect(verifyCramMd5(last.credentials, { password: RFC_SECRET })).toBe(true);
    const stored = doveadmHash('CRAM-MD5', RFC_SECRET);
    const context = credentialsFor(stored, 'PLAIN', 'CRAM-MD5');
    expect(context !== null && verifyCramMd5(last.credentials, { context })).toBe(true);
  });

  it('challenges differ between exchanges', () => {
    expect(run('x %c').challenge?.equals(run('x %c').challenge ?? Buffer.alloc(0))).toBe(false);
  });

  it.each(['tim', 'tim b913a602c7eda7a495b4e6e7334d389', ' b913a602c7eda7a495b4e6e7334d3890', 'tim  b913a602c7eda7a495b4e6e7334d3890x', 'tim\0 b913a602c7eda7a495b4e6e7334d3890', ''])(
    'malformed response %j',
    (response) => {
      expect(run(response)).toMatchObject({ kind: 'fail', reason: 'malformed' });
    },
  );

  it('an initial response is a protocol error; `=` counts as none', () => {
    expect(createServerMech('CRAM-MD5', { hostname: 'h' })?.start(Buffer.from('tim'))).toEqual({ kind: 'fail', reason: 'protocol' });
    expect(createServerMech('CRAM-MD5', { hostname: 'h' })?.start(Buffer.alloc(0)).kind).toBe('challenge');
  });
});
