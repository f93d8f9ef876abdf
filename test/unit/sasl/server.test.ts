import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createServerMech,
  isPlaintextMech,
  isServerMech,
  listServerMechs,
  MAX_SASL_RESPONSE_BYTES,
  SERVER_MECHANISMS,
  type SaslServerMech,
  type SaslStep,
} from '../../../src/sasl/index.js';

const ctx = { hostname: 'imap.example.org' };
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

function mech(name: string, context: Parameters<typeof createServerMech>[1] = ctx): SaslServerMech {
  const m = createServerMech(name, context);
  if (m === undefined) throw new Error(`no ${name}`);
  return m;
}

function done(step: SaslStep): unknown {
  if (step.kind !== 'done') throw new Error(`expected done, got ${JSON.stringify(step)}`);
  return step.credentials;
}

describe('PLAIN (RFC 4616)', () => {
  it('accepts the §4 examples as initial response or after an empty challenge', () => {
    expect(done(mech('PLAIN').start(b('\0tim\0tanstaaftanstaaf')))).toEqual({
      type: 'password', authzid: '', authcid: 'tim', password: b('tanstaaftanstaaf'),
    });
    const m = mech('plain');
    expect(m.start(null)).toEqual({ kind: 'challenge', data: Buffer.alloc(0) });
    expect(done(m.step(b('Ursel\0Kurt\0xipj3plmq')))).toEqual({
      type: 'password', authzid: 'Ursel', authcid: 'Kurt', password: b('xipj3plmq'),
    });
  });

  it('keeps password bytes that are not UTF-8', () => {
    const pw = Buffer.from([0xff, 0xfe, 0x41]);
    expect(done(mech('PLAIN').start(Buffer.concat([b('\0u\0'), pw])))).toMatchObject({ password: pw });
  });

  it.each([
    ['no NUL', 'timtanstaaf'],
    ['one NUL', 'tim\0tanstaaf'],
    ['three NULs', '\0tim\0tan\0staaf'],
    ['empty authcid', 'admin\0\0secret'],
    ['empty password', '\0tim\0'],
    ['empty message (`=`)', ''],
    ['NUL-only', '\0\0'],
  ])('%s → malformed', (_label, msg) => {
    expect(mech('PLAIN').start(b(msg))).toEqual({ kind: 'fail', reason: 'malformed' });
  });

  it('rejects identities that are not UTF-8', () => {
    expect(mech('PLAIN').start(Buffer.from([0, 0xff, 0, 0x41]))).toEqual({ kind: 'fail', reason: 'malformed' });
    expect(mech('PLAIN').start(Buffer.from([0xc3, 0, 0x41, 0, 0x41]))).toEqual({ kind: 'fail', reason: 'malformed' });
  });

  it(`bounds a response at ${MAX_SASL_RESPONSE_BYTES} bytes`, () => {
    const at = Buffer.concat([b('\0u\0'), Buffer.alloc(MAX_SASL_RESPONSE_BYTES - 3, 0x61)]);
    expect(mech('PLAIN').start(at).kind).toBe('done');
    const over = Buffer.concat([at, b('a')]);
    expect(mech('PLAIN').start(over)).toEqual({ kind: 'fail', reason: 'malformed' });
    const m = mech('PLAIN');
    m.start(null);
    expect(m.step(over)).toEqual({ kind: 'fail', reason: 'malformed' });
  });
});

describe('LOGIN', () => {
  it('asks for user then password', () => {
    const m = mech('LOGIN');
    expect(m.start(null)).toEqual({ kind: 'challenge', data: b('Username:') });
    expect(m.step(b('tim'))).toEqual({ kind: 'challenge', data: b('Password:') });
    expect(done(m.step(b('tanstaaf')))).toEqual({ type: 'password', authzid: '', authcid: 'tim', password: b('tanstaaf') });
  });

  it('takes a non-empty initial response as the user name; `=` counts as none', () => {
    const m = mech('LOGIN');
    expect(m.start(b('tim'))).toEqual({ kind: 'challenge', data: b('Password:') });
    expect(done(m.step(b('pw')))).toMatchObject({ authcid: 'tim' });
    expect(mech('LOGIN').start(Buffer.alloc(0))).toEqual({ kind: 'challenge', data: b('Username:') });
  });

  it('rejects an empty, NUL-carrying or non-UTF-8 user name', () => {
    for (const user of [Buffer.alloc(0), b('ti\0m'), Buffer.from([0xff])]) {
      const m = mech('LOGIN');
      m.start(null);
      expect(m.step(user)).toEqual({ kind: 'fail', reason: 'malformed' });
    }
  });
});

describe('EXTERNAL (RFC 4422 App. A)', () => {
  const cert = { ...ctx, tlsClientCertUser: 'fred@example.org' };

  it('is unavailable without a client certificate', () => {
    expect(createServerMech('EXTERNAL', ctx)).toBeUndefined();
  });

  it('empty challenge, empty response: act as the certificate user', () => {
    const m = mech('EXTERNAL', cert);
    expect(m.plaintext).toBe(false);
    expect(m.start(null)).toEqual({ kind: 'challenge', data: Buffer.alloc(0) });
    expect(done(m.step(Buffer.alloc(0)))).toEqual({ type: 'external', authzid: '', authcid: 'fred@example.org' });
  });

  it('initial response names an authzid', () => {
    expect(done(mech('EXTERNAL', cert).start(b('fred')))).toEqual({ type: 'external', authzid: 'fred', authcid: 'fred@example.org' });
    expect(mech('EXTERNAL', cert).start(b('fr\0ed'))).toEqual({ kind: 'fail', reason: 'malformed' });
  });
});

describe('step order', () => {
  it('start twice, step before start, step after done are protocol failures', () => {
    const a = mech('PLAIN');
    a.start(null);
    expect(a.start(null)).toEqual({ kind: 'fail', reason: 'protocol' });
    expect(a.step(b('\0u\0p'))).toEqual({ kind: 'fail', reason: 'protocol' });
    expect(mech('LOGIN').step(b('x'))).toEqual({ kind: 'fail', reason: 'protocol' });
    const c = mech('PLAIN');
    c.start(b('\0u\0p'));
    expect(c.step(b('\0u\0p'))).toEqual({ kind: 'fail', reason: 'protocol' });
    const d = mech('PLAIN');
    d.start(b('bad'));
    expect(d.step(b('\0u\0p'))).toEqual({ kind: 'fail', reason: 'protocol' });
  });

  it('random byte sequences never throw, and end in done or fail once they end', () => {
    const withCert = { ...ctx, tlsClientCertUser: 'u' };
    fc.assert(
      fc.property(
        fc.constantFrom(...SERVER_MECHANISMS),
        fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }),
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 5 }),
        (name, initial, steps) => {
          const m = mech(name, withCert);
          let last = m.start(initial === null ? null : Buffer.from(initial));
          for (const s of steps) {
            const ended = last.kind !== 'challenge';
            last = m.step(Buffer.from(s));
            if (ended) expect(last).toEqual({ kind: 'fail', reason: 'protocol' });
          }
          expect(['challenge', 'done', 'fail']).toContain(last.kind);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('registry', () => {
  it('knows its mechanisms, case-insensitively', () => {
    expect(SERVER_MECHANISMS).toEqual(['PLAIN', 'LOGIN', 'CRAM-MD5', 'EXTERNAL']);
    expect(isServerMech('cram-md5')).toBe(true);
    expect(isServerMech('GSSAPI')).toBe(false);
    expect(createServerMech('GSSAPI', ctx)).toBeUndefined();
    expect(isPlaintextMech('login')).toBe(true);
    expect(isPlaintextMech('CRAM-MD5')).toBe(false);
  });

  it('lists what may be advertised', () => {
    expect(listServerMechs({ plaintextAllowed: true })).toEqual(['PLAIN', 'LOGIN']);
    expect(listServerMechs({ plaintextAllowed: false })).toEqual([]);
    const enabled = ['plain', 'cram-md5', 'gssapi', 'PLAIN', 'external', 'login'];
    expect(listServerMechs({ plaintextAllowed: true, enabled })).toEqual(['PLAIN', 'CRAM-MD5', 'LOGIN']);
    expect(listServerMechs({ plaintextAllowed: false, enabled, clientCert: true })).toEqual(['CRAM-MD5', 'EXTERNAL']);
  });
});
