/** The backend's tagged login reply relayed under the client's tag: bytes kept, line end made CRLF. */
import { describe, expect, it } from 'vitest';
import { underClientTag } from '../../../src/imap/upstream.js';

describe('underClientTag', () => {
  it('swaps the backend tag for the client tag and keeps the rest byte for byte', () => {
    const raw = Buffer.from('L OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n');
    expect(underClientTag('a001', raw).toString('latin1')).toBe('a001 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n');
    expect(underClientTag('x', raw).toString('latin1')).toBe('x OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n');
  });

  it('ends a bare LF line with CRLF', () => {
    expect(underClientTag('t1', Buffer.from('L OK done\n')).toString('latin1')).toBe('t1 OK done\r\n');
  });

  it('does not re-encode the text: bytes that are not UTF-8 pass as they are', () => {
    const raw = Buffer.concat([Buffer.from('L OK caf'), Buffer.from([0xe9]), Buffer.from('\r\n')]);
    const out = underClientTag('A1', raw);
    expect([...out.subarray(0, 9)]).toEqual([...Buffer.from('A1 OK caf')]);
    expect(out[9]).toBe(0xe9);
    expect(out.subarray(10).toString('latin1')).toBe('\r\n');
  });
});
