/**
 * LMTP reply mapping: backend failures by kind (Dovecot's "Remote server not answering"
 * texts), loops as 554 5.4.6, and relayed backend replies reduced to one clean line.
 */
import { describe, expect, it } from 'vitest';
import { failure } from '../../../src/backend/failure.js';
import { backendFailureReply, rcptAccepted, relayReply } from '../../../src/lmtp/replies.js';

describe('LMTP replies', () => {
  it('maps every backend failure kind to a temporary reply (loops: permanent 554 5.4.6)', () => {
    expect(backendFailureReply(failure('connect', 'refused'))).toBe('451 4.4.0 Remote server not answering (connect)');
    expect(backendFailureReply(failure('timeout', 'x'))).toBe('451 4.4.0 Remote server not answering (timed out)');
    expect(backendFailureReply(failure('remote', 'x'))).toBe('451 4.4.0 Remote server not answering (connection lost)');
    expect(backendFailureReply(failure('protocol', 'x'))).toBe('451 4.4.0 Remote server not answering (bad reply)');
    expect(backendFailureReply(failure('tls', 'x'))).toBe('451 4.4.0 Remote server not answering (TLS)');
    expect(backendFailureReply(failure('host-down', 'x'))).toBe('451 4.4.0 Remote server not answering (host is down)');
    expect(backendFailureReply(failure('config', 'secret detail'))).toBe('451 4.3.0 Internal error occurred. Refer to server log for more information.');
    expect(backendFailureReply(failure('loop', 'TTL reached zero - proxies appear to be looping? (backend x)'))).toBe('554 5.4.6 Proxying appears to be looping (TTL=0)');
    expect(backendFailureReply(failure('loop', 'Proxying loops to itself: x'))).toBe('554 5.4.6 Proxying loops to itself');
  });

  it('relays a backend refusal with its codes and a cleaned, bounded text', () => {
    expect(relayReply({ code: 552, enhanced: '5.2.2', lines: ['<a@b> Quota exceeded', '(mailbox full)'] })).toBe('552 5.2.2 <a@b> Quota exceeded (mailbox full)');
    expect(relayReply({ code: 451, enhanced: undefined, lines: ['temp\x00fail\r'] })).toBe('451 4.0.0 temp fail');
    expect(relayReply({ code: 550, enhanced: undefined, lines: [''] })).toBe('550 5.0.0 Delivery failed');
    expect(relayReply({ code: 550, enhanced: '5.1.1', lines: ['x'.repeat(1000)] }).length).toBeLessThan(220);
    expect(relayReply({ code: 421, enhanced: '4.4.2', lines: ['backend going away'] })).toBe('451 4.4.0 Remote server not answering (connection lost)');
    expect(rcptAccepted({ code: 250, enhanced: undefined, lines: ['OK'] })).toBe('250 2.1.5 OK');
    expect(rcptAccepted({ code: 250, enhanced: '2.1.0', lines: ['Fine'] })).toBe('250 2.1.0 OK');
  });
});
