import { describe, expect, it } from 'vitest';
import { createClientMech, createServerMech, SaslClientError, type SaslClientMech, type SaslStep } from '../../../src/sasl/index.js';

const pw = Buffer.from('tanstaaftanstaaf');

/** Run a client mechanism against our own server mechanism, with or without SASL-IR. */
function exchange(client: SaslClientMech, useInitial: boolean): SaslStep {
  const server = createServerMech(client.name, { hostname: 'h' });
  if (server === undefined) throw new Error(client.name);
  const initial = client.start();
  let step = server.start(useInitial ? initial : null);
  for (let i = 0; step.kind === 'challenge' && i < 5; i++) step = server.step(client.step(step.data));
  return step;
}

describe('PLAIN client', () => {
  it('builds the RFC 4616 message, with and without authzid (master-user login)', () => {
    expect(createClientMech('PLAIN', { authcid: 'tim', password: pw }).start()).toEqual(Buffer.from('\0tim\0tanstaaftanstaaf'));
    expect(createClientMech('PLAIN', { authzid: 'alice', authcid: 'master', password: pw }).start()).toEqual(
      Buffer.from('alice\0master\0tanstaaftanstaaf'),
    );
  });

  it('completes against the server mechanism, with SASL-IR and after an empty challenge', () => {
    for (const ir of [true, false]) {
      const step = exchange(createClientMech('PLAIN', { authzid: 'alice', authcid: 'master', password: pw }), ir);
      expect(step).toEqual({ kind: 'done', credentials: { type: 'password', authzid: 'alice', authcid: 'master', password: pw } });
    }
  });

  it('refuses a second or non-empty challenge', () => {
    const c = createClientMech('PLAIN', { authcid: 'tim', password: pw });
    expect(() => c.step(Buffer.from('x'))).toThrow(SaslClientError);
    c.step(Buffer.alloc(0));
    expect(() => c.step(Buffer.alloc(0))).toThrow(SaslClientError);
  });

  it('refuses NULs that would shift the fields, and an empty authcid', () => {
    expect(() => createClientMech('PLAIN', { authcid: 'tim\0admin', password: pw })).toThrow(SaslClientError);
    expect(() => createClientMech('PLAIN', { authzid: 'a\0', authcid: 'tim', password: pw })).toThrow(SaslClientError);
    expect(() => createClientMech('PLAIN', { authcid: 'tim', password: Buffer.from('a\0b') })).toThrow(SaslClientError);
    expect(() => createClientMech('PLAIN', { authcid: '', password: pw })).toThrow(SaslClientError);
  });
});

describe('LOGIN client', () => {
  it('answers user then password, and completes against the server', () => {
    const c = createClientMech('LOGIN', { authcid: 'tim', password: pw });
    expect(c.start()).toBeNull();
    expect(exchange(createClientMech('LOGIN', { authcid: 'tim', password: pw }), false)).toEqual({
      kind: 'done', credentials: { type: 'password', authzid: '', authcid: 'tim', password: pw },
    });
  });

  it('throws on a third challenge and refuses an authzid', () => {
    const c = createClientMech('LOGIN', { authcid: 'tim', password: pw });
    c.step(Buffer.from('Username:'));
    c.step(Buffer.from('Password:'));
    expect(() => c.step(Buffer.from('?'))).toThrow(SaslClientError);
    expect(() => createClientMech('LOGIN', { authzid: 'alice', authcid: 'tim', password: pw })).toThrow(SaslClientError);
  });
});
