import { describe, expect, it } from 'vitest';
import { ImapResponseReader } from '../../../../src/imap/wire/response-reader.js';
import {
  capabilitiesOf,
  isCapabilityResponse,
  isIdResponse,
  parseCapabilities,
  responseArgs,
  untaggedName,
} from '../../../../src/imap/wire/response.js';
import type { ImapResponse } from '../../../../src/imap/wire/response.js';
import { randomCuts, readResponses } from './helpers.js';

const GREETING = '* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot ready.\r\n';

function responses(input: string | Buffer): ImapResponse[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const whole = readResponses(bytes);
  for (const chunking of ['bytes', randomCuts(bytes.length, 7), randomCuts(bytes.length, 8)] as const) {
    expect(readResponses(bytes, chunking)).toEqual(whole);
  }
  return whole.map((ev) => {
    if (ev.kind !== 'response') throw new Error(`unexpected ${ev.kind}`);
    return ev;
  });
}

describe('ImapResponseReader', () => {
  it('greeting with a CAPABILITY code', () => {
    const [r] = responses(GREETING);
    expect(r).toMatchObject({ tag: '*', status: 'OK', code: { name: 'CAPABILITY', args: expect.stringMatching(/^IMAP4rev1 .* AUTH=PLAIN$/) }, text: 'Dovecot ready.' });
    expect(r?.raw.toString()).toBe(GREETING);
    const caps = r === undefined ? undefined : capabilitiesOf(r);
    expect(caps?.has('LITERAL+')).toBe(true);
    expect(caps?.has('IMAP4REV1')).toBe(true);
    expect(caps?.has('AUTH=PLAIN')).toBe(true);
  });

  it('tagged replies, codes without arguments, statuses in any case', () => {
    const rs = responses('a1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\na2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\na3 bad oops\r\n* BYE\r\n* PREAUTH [ALERT] hi\r\n');
    expect(rs.map((r) => [r.tag, r.status, r.code?.name, r.code?.args, r.text])).toEqual([
      ['a1', 'OK', 'CAPABILITY', 'IMAP4rev1 IDLE', 'Logged in'],
      ['a2', 'NO', 'AUTHENTICATIONFAILED', '', 'Authentication failed.'],
      ['a3', 'BAD', undefined, undefined, 'oops'],
      ['*', 'BYE', undefined, undefined, ''],
      ['*', 'PREAUTH', 'ALERT', '', 'hi'],
    ]);
  });

  it('untagged CAPABILITY and ID are recognised', () => {
    const [cap, id, exists] = responses('* CAPABILITY IMAP4rev1 STARTTLS auth=plain\r\n* ID ("name" "Dovecot")\r\n* 3 EXISTS\r\n');
    if (cap === undefined || id === undefined || exists === undefined) throw new Error('missing');
    expect(isCapabilityResponse(cap)).toBe(true);
    expect([...(capabilitiesOf(cap) ?? [])]).toEqual(['IMAP4REV1', 'STARTTLS', 'AUTH=PLAIN']);
    expect(isIdResponse(id)).toBe(true);
    expect(isCapabilityResponse(id)).toBe(false);
    expect(untaggedName(exists)).toBe('EXISTS');
    expect(responseArgs(id)).toEqual([{ type: 'list', items: [{ type: 'string', value: Buffer.from('name') }, { type: 'string', value: Buffer.from('Dovecot') }] }]);
  });

  it('literals in untagged data are part of the response', () => {
    const input = '* ID ("name" {7}\r\nDovecot "os" {0}\r\n)\r\na OK done\r\n';
    const [id, ok] = responses(input);
    expect(id?.raw.toString()).toBe('* ID ("name" {7}\r\nDovecot "os" {0}\r\n)\r\n');
    expect(id === undefined ? undefined : responseArgs(id)).toEqual([
      { type: 'list', items: [{ type: 'string', value: Buffer.from('name') }, { type: 'string', value: Buffer.from('Dovecot') }, { type: 'string', value: Buffer.from('os') }, { type: 'string', value: Buffer.from('') }] },
    ]);
    expect(ok).toMatchObject({ tag: 'a', status: 'OK', text: 'done' });
  });

  it('status and continuation texts ending in {n} are text, not literals', () => {
    const rs = responses('a NO Not {5}\r\n+ {3}\r\n* OK {2}\r\nb OK\r\n');
    expect(rs.map((r) => [r.tag, r.status, r.text])).toEqual([
      ['a', 'NO', 'Not {5}'],
      ['+', undefined, '{3}'],
      ['*', 'OK', '{2}'],
      ['b', 'OK', ''],
    ]);
  });

  it('continuation requests, bare LF, UTF-8 text', () => {
    const rs = responses('+ VXNlcm5hbWU6\r\n+\r\n+ \nx NO Passwort ungültig\n');
    expect(rs.map((r) => [r.tag, r.text])).toEqual([
      ['+', 'VXNlcm5hbWU6'],
      ['+', ''],
      ['+', ''],
      ['x', 'Passwort ungültig'],
    ]);
  });

  it('parseCapabilities', () => {
    expect([...parseCapabilities(' imap4rev1  SASL-IR\tAUTH=PLAIN ')]).toEqual(['IMAP4REV1', 'SASL-IR', 'AUTH=PLAIN']);
    expect(parseCapabilities('').size).toBe(0);
  });

  it('a response over maxResponseSize is an error, streamed or announced', () => {
    expect(readResponses(`* OK ${'x'.repeat(100)}\r\n`, 'bytes', 64)).toEqual([{ kind: 'error', error: 'too-long', detail: 'response too long' }]);
    expect(readResponses('* ID ({4294967296}\r\n', 'whole', 64)).toEqual([{ kind: 'error', error: 'too-long', detail: 'literal too large' }]);
    const r = new ImapResponseReader({ maxResponseSize: 64 });
    r.push(Buffer.alloc(1 << 20, 0x61));
    expect(r.next()).toMatchObject({ kind: 'error' });
    expect(r.buffered).toBe(0);
    expect(r.failed).toBe(true);
    expect(r.next()).toBeNull();
    expect(readResponses(`* OK ${'x'.repeat(57)}\r\n`, 'bytes', 64)).toHaveLength(1);
  });

  it('STARTTLS response injection: bytes after OK are drained, not parsed', () => {
    const r = new ImapResponseReader();
    r.push(Buffer.from('a OK Begin TLS negotiation now.\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n'));
    expect(r.next()).toMatchObject({ tag: 'a', status: 'OK' });
    expect(r.drain().toString()).toBe('* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n');
    expect(r.next()).toBeNull();
  });

  it('after LOGIN OK the rest (even a partial response) goes to the splice verbatim', () => {
    const r = new ImapResponseReader();
    r.push(Buffer.from('a OK Logged in\r\n* 1 FETCH (BODY {5}\r\nhel'));
    expect(r.next()).toMatchObject({ tag: 'a', status: 'OK' });
    expect(r.next()).toBeNull();
    expect(r.drain().toString()).toBe('* 1 FETCH (BODY {5}\r\nhel');
  });
});
