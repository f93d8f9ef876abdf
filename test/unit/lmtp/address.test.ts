/**
 * Envelope paths and parameters (RFC 5321 §4.1.2), recipient details (recipient_delimiter),
 * the address rewrite after a passdb `user`/`destuser`, ORCPT and xtext.
 */
import { describe, expect, it } from 'vitest';
import { orcptValue, parsePathArgs, rewriteAddress, splitDetail, xtextDecode, type Mailbox } from '../../../src/lmtp/address.js';

function mailbox(args: string, kw: 'FROM' | 'TO' = 'TO'): Mailbox | null | string {
  const r = parsePathArgs(args, kw);
  return r.ok ? r.mailbox : r.error;
}

describe('parsePathArgs', () => {
  it('accepts ordinary, quoted, domain-less and null paths', () => {
    expect(mailbox('TO:<alice@a.example>')).toEqual({ local: 'alice', localText: 'alice', domain: 'a.example' });
    expect(mailbox('to: <Bob.Smith+x@B.example>')).toEqual({ local: 'Bob.Smith+x', localText: 'Bob.Smith+x', domain: 'B.example' });
    expect(mailbox('TO:<"a b\\"c"@x.example>')).toEqual({ local: '"a b\\"c"', localText: 'a b"c', domain: 'x.example' });
    expect(mailbox('TO:<postmaster>')).toEqual({ local: 'postmaster', localText: 'postmaster', domain: undefined });
    expect(mailbox('TO:<@relay.example,@r2.example:u@d.example>')).toEqual({ local: 'u', localText: 'u', domain: 'd.example' });
    expect(mailbox('TO:<u@[192.0.2.1]>')).toEqual({ local: 'u', localText: 'u', domain: '[192.0.2.1]' });
    expect(mailbox('FROM:<>', 'FROM')).toBeNull();
  });

  it('refuses broken paths with a reason', () => {
    expect(mailbox('TO:alice@a.example')).toBe("missing '<' at the beginning of the path");
    expect(mailbox('TO:<alice@a.example')).toBe("missing '>' at the end of the path");
    expect(mailbox('FROM:<a@b>', 'TO')).toBe('expected TO:<address>');
    expect(mailbox('TO:<a b@c>')).toBe('invalid address');
    expect(mailbox('TO:<a..b@c>')).toBe('invalid address');
    expect(mailbox('TO:<a@-c>')).toBe('invalid address');
    expect(mailbox('TO:<a@b>x')).toBe('junk after the path');
    expect(mailbox(`TO:<${'a'.repeat(250)}@b.example>`)).toBe('path too long');
    expect(mailbox('TO:<a\x01@b>')).toBe('invalid address');
  });

  it('reads parameters (keys upper-cased, values kept)', () => {
    const r = parsePathArgs('FROM:<a@b> size=100 BODY=8BITMIME', 'FROM');
    expect(r.ok && [...r.params]).toEqual([['SIZE', '100'], ['BODY', '8BITMIME']]);
    const bare = parsePathArgs('FROM:<a@b> SMTPUTF8', 'FROM');
    expect(bare.ok && [...bare.params]).toEqual([['SMTPUTF8', undefined]]);
    expect(parsePathArgs('FROM:<a@b> SIZE=1 SIZE=2', 'FROM').ok).toBe(false);
    expect(parsePathArgs('FROM:<a@b> =x', 'FROM').ok).toBe(false);
    expect(parsePathArgs('FROM:<a@b> K=a=b', 'FROM').ok).toBe(false);
  });
});

describe('recipient detail and rewrite', () => {
  const m = (s: string): Mailbox => {
    const r = parsePathArgs(`TO:<${s}>`, 'TO');
    if (!r.ok || r.mailbox === null) throw new Error(s);
    return r.mailbox;
  };

  it('strips the detail at the first delimiter found', () => {
    expect(splitDetail(m('alice+news@a.example'), '+')).toEqual({ username: 'alice@a.example', detail: 'news', delimiter: '+' });
    expect(splitDetail(m('alice-x+y@a.example'), '+-')).toEqual({ username: 'alice@a.example', detail: 'x+y', delimiter: '-' });
    expect(splitDetail(m('alice+news@a.example'), '')).toEqual({ username: 'alice+news@a.example', detail: undefined, delimiter: undefined });
    expect(splitDetail(m('bob'), '+')).toEqual({ username: 'bob', detail: undefined, delimiter: undefined });
  });

  it('puts the detail back on a renamed user', () => {
    const r = splitDetail(m('alice+news@a.example'), '+');
    expect(rewriteAddress('alice@b.example', r)).toBe('alice+news@b.example');
    expect(rewriteAddress('carol', r)).toBe('carol+news');
    expect(rewriteAddress('carol@b.example', splitDetail(m('alice@a.example'), '+'))).toBe('carol@b.example');
    expect(rewriteAddress('not an address', r)).toBeNull();
  });

  it('ORCPT carries the original address in xtext', () => {
    expect(orcptValue('a+b=c@x.example')).toBe('rfc822;a+2Bb+3Dc@x.example');
    expect(xtextDecode('a+2Bb+3Dc@x.example')).toBe('a+b=c@x.example');
    expect(xtextDecode('bad+Z1')).toBeNull();
    expect(xtextDecode('a=b')).toBeNull();
  });
});
