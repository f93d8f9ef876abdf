import { describe, expect, it } from 'vitest';
import { decodeForward, encodeForward, formatXclient, XclientValueError, xtextEncode } from '../../../src/backend/xclient.js';

describe('formatXclient', () => {
  it('POP3 form (raw): what Dovecot pop3-proxy.c sends', () => {
    const fwd = new Map([['a', 'b'], ['c', 'd']]);
    expect(formatXclient({ addr: '10.1.2.3', port: 5555, session: 'abc', ttl: 4, forward: fwd }, { encoding: 'raw' })).toBe(
      `XCLIENT ADDR=10.1.2.3 PORT=5555 SESSION=abc TTL=4 FORWARD=${Buffer.from('a=b\tc=d').toString('base64')}`,
    );
    expect(formatXclient({ addr: '2001:db8::1' }, { encoding: 'raw' })).toBe('XCLIENT ADDR=2001:db8::1');
  });

  it('Postfix form (xtext, default): IPV6: prefix, + and = encoded, attribute order fixed', () => {
    expect(formatXclient({ proto: 'LMTP', helo: 'mx 1', login: 'a+b=c', addr: '2001:db8::1', port: 25, ttl: 3, session: 's' })).toBe(
      'XCLIENT ADDR=IPV6:2001:db8::1 PORT=25 HELO=mx+201 PROTO=LMTP LOGIN=a+2Bb+3Dc SESSION=s TTL=3',
    );
    expect(formatXclient({ forward: new Map([['k', 'v']]) })).toBe(`XCLIENT FORWARD=${xtextEncode(encodeForward(new Map([['k', 'v']])))}`);
    expect(formatXclient({ addr: '::1' }, { ipv6Prefix: false })).toBe('XCLIENT ADDR=::1');
  });

  it('nothing given: the bare command; an empty FORWARD is left out', () => {
    expect(formatXclient({})).toBe('XCLIENT');
    expect(formatXclient({ forward: new Map() })).toBe('XCLIENT');
  });

  it('raw values that would split or end the line are refused, not sent', () => {
    expect(() => formatXclient({ helo: 'a b' }, { encoding: 'raw' })).toThrow(XclientValueError);
    expect(() => formatXclient({ login: 'x\r\nQUIT' }, { encoding: 'raw' })).toThrow(XclientValueError);
    expect(formatXclient({ login: 'x\r\nQUIT' })).toBe('XCLIENT LOGIN=x+0D+0AQUIT');
  });

  it('xtext encodes every byte outside ! .. ~ and the two specials', () => {
    expect(xtextEncode('ä +=~!')).toBe('+C3+A4+20+2B+3D~!');
  });

  it('FORWARD round-trips values with TAB, CR, LF, \\x01 and = (Dovecot tab-escaping)', () => {
    const fields = new Map([['x', 'a\tb\r\nc\x01d'], ['y', 'p=q'], ['empty', '']]);
    const encoded = encodeForward(fields);
    expect(Buffer.from(encoded, 'base64').toString()).toBe('x=a\x01tb\x01r\x01nc\x011d\ty=p=q\tempty=');
    expect(decodeForward(encoded)).toEqual(fields);
    expect(decodeForward('')).toEqual(new Map());
  });
});
