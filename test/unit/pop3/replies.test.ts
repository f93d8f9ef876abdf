import { describe, expect, it } from 'vitest';
import type { ProxyFailureKind } from '../../../src/backend/failure.js';
import { safeText } from '../../../src/login/flow.js';
import { authOutcomeReply, proxyFailureReply, REPLY } from '../../../src/pop3/replies.js';

const KINDS: ProxyFailureKind[] = ['connect', 'timeout', 'tls', 'remote', 'protocol', 'config', 'auth-failed', 'auth-replied', 'remote-tempfail', 'loop', 'host-down'];

describe('POP3 reply table', () => {
  it('every reply is one line with +OK, -ERR or a continuation, and codes are RFC 3206 / 2449 ones', () => {
    for (const text of Object.values(REPLY)) {
      expect(text).toMatch(/^(\+OK|-ERR)( |$)/);
      expect(text).not.toMatch(/[\r\n]/);
      const code = /^-ERR \[([^\]]+)\]/.exec(text)?.[1];
      if (code !== undefined) expect(['AUTH', 'SYS/TEMP', 'SYS/PERM', 'IN-USE', 'LOGIN-DELAY']).toContain(code);
    }
  });

  it('backend trouble of every kind is [SYS/TEMP]; only the relayed codes pass backend text', () => {
    for (const kind of KINDS) {
      const reply = proxyFailureReply({ kind, detail: 'secret backend detail: user bob unknown' });
      expect(reply).not.toContain('secret');
      if (kind === 'auth-failed' || kind === 'auth-replied') expect(reply).toBe(REPLY.authFailed);
      else expect(reply).toBe(REPLY.unavailable);
    }
    expect(proxyFailureReply({ kind: 'auth-replied', detail: 'x', relay: '-ERR [IN-USE] Mailbox locked.' })).toBe('-ERR [IN-USE] Mailbox locked.');
    expect(proxyFailureReply({ kind: 'remote-tempfail', detail: 'x', relay: '-ERR [SYS/TEMP] backend text' })).toBe(REPLY.unavailable);
  });

  it('login core outcomes', () => {
    expect(authOutcomeReply({ kind: 'failed', why: 'unknown user' }, 's1')).toBe('-ERR [AUTH] Authentication failed.');
    expect(authOutcomeReply({ kind: 'tempfail', why: 'db down' }, 's1')).toBe('-ERR [SYS/TEMP] Temporary authentication failure. [session s1]');
    expect(authOutcomeReply({ kind: 'disabled' }, 's1')).toBe('-ERR [AUTH] Login disabled for this user.');
    expect(authOutcomeReply({ kind: 'disabled', reason: 'Moved.\r\n+OK fake' }, 's1')).toBe('-ERR [AUTH] Moved.  +OK fake');
    expect(authOutcomeReply({ kind: 'referral', user: 'u', host: 'h', nologin: true }, 's1')).toBe(REPLY.disabled);
    expect(authOutcomeReply({ kind: 'referral', user: 'u', host: 'h', nologin: false }, 's1')).toBe(REPLY.unavailable);
    expect(authOutcomeReply({ kind: 'no-route', user: 'u' }, 's1')).toBe(REPLY.unavailable);
  });

  it('safeText keeps one printable bounded line', () => {
    expect(safeText('a\r\nb')).toBe('a  b');
    expect(safeText('x'.repeat(500))).toHaveLength(200);
    expect(safeText('\x01', 'fallback')).toBe('fallback');
  });
});
