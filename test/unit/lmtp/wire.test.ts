/**
 * LMTP framers: the bounded command line reader, the verb split, and the backend reply reader
 * (multi-line replies, enhanced codes, framing errors), fed whole and at every split point.
 */
import { describe, expect, it } from 'vitest';
import { LineReader, LMTP_MAX_COMMAND_LINE, LMTP_MAX_REPLY_LINES, parseCommand, SmtpReplyReader, type ReplyEvent } from '../../../src/lmtp/wire.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

function replies(chunks: string[]): ReplyEvent[] {
  const r = new SmtpReplyReader();
  const out: ReplyEvent[] = [];
  for (const c of chunks) {
    r.push(b(c));
    for (let ev = r.next(); ev !== null; ev = r.next()) {
      out.push(ev);
      if (ev.kind === 'error') return out;
    }
  }
  return out;
}

describe('LineReader', () => {
  it('splits CRLF and bare LF lines, keeps the rest', () => {
    const lr = new LineReader(100);
    lr.push(b('LHLO a\r\nNOOP\nRS'));
    expect(lr.next()).toEqual({ kind: 'line', line: b('LHLO a') });
    expect(lr.next()).toEqual({ kind: 'line', line: b('NOOP') });
    expect(lr.next()).toBeNull();
    lr.push(b('ET\r\n'));
    expect(lr.next()).toEqual({ kind: 'line', line: b('RSET') });
    lr.push(b('DATA\r\nbody'));
    lr.next();
    expect(lr.drain().toString()).toBe('body');
    expect(lr.buffered).toBe(0);
  });

  it(`refuses a line longer than the limit (${LMTP_MAX_COMMAND_LINE}) without waiting for its end`, () => {
    const lr = new LineReader(LMTP_MAX_COMMAND_LINE);
    lr.push(b('x'.repeat(LMTP_MAX_COMMAND_LINE)));
    expect(lr.next()).toBeNull();
    lr.push(b('\r'));
    expect(lr.next()).toBeNull();
    lr.push(b('yy'));
    expect(lr.next()).toEqual({ kind: 'too-long' });
    const ok = new LineReader(LMTP_MAX_COMMAND_LINE);
    ok.push(b(`${'x'.repeat(LMTP_MAX_COMMAND_LINE)}\r\n`));
    expect(ok.next()?.kind).toBe('line');
    const long = new LineReader(LMTP_MAX_COMMAND_LINE);
    long.push(b(`${'x'.repeat(LMTP_MAX_COMMAND_LINE + 1)}\r\n`));
    expect(long.next()).toEqual({ kind: 'too-long' });
  });
});

describe('parseCommand', () => {
  it('upper-cases the verb and keeps the arguments as written', () => {
    expect(parseCommand(b('mail FROM:<a@b> SIZE=5'))).toEqual({ verb: 'MAIL', args: 'FROM:<a@b> SIZE=5' });
    expect(parseCommand(b('QUIT'))).toEqual({ verb: 'QUIT', args: '' });
    expect(parseCommand(b(''))).toEqual({ verb: '', args: '' });
    expect(parseCommand(b('X'.repeat(100))).verb.length).toBe(17);
  });
});

describe('SmtpReplyReader', () => {
  const transcript = '220 host ready\r\n250-host\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 2.1.5 OK\r\n550 5.1.1 <x@y> User doesn\'t exist\r\n451 4.3.0\r\n354\r\n452 4.2.2 text\r\n';
  const expected = [
    { code: 220, enhanced: undefined, lines: ['host ready'] },
    { code: 250, enhanced: undefined, lines: ['host', 'PIPELINING', '8BITMIME'] },
    { code: 250, enhanced: '2.1.5', lines: ['OK'] },
    { code: 550, enhanced: '5.1.1', lines: ["<x@y> User doesn't exist"] },
    { code: 451, enhanced: '4.3.0', lines: [''] },
    { code: 354, enhanced: undefined, lines: [''] },
    { code: 452, enhanced: '4.2.2', lines: ['text'] },
  ];

  it('reads replies whole and at every split point', () => {
    expect(replies([transcript]).map((e) => (e.kind === 'reply' ? e.reply : e))).toEqual(expected);
    for (let cut = 0; cut <= transcript.length; cut++) {
      expect(replies([transcript.slice(0, cut), transcript.slice(cut)]).map((e) => (e.kind === 'reply' ? e.reply : e))).toEqual(expected);
    }
  });

  it('an enhanced code of another class is text', () => {
    expect(replies(['250 5.1.1 odd\r\n'])[0]).toEqual({ kind: 'reply', reply: { code: 250, enhanced: undefined, lines: ['5.1.1 odd'] } });
  });

  it('framing errors end the reader', () => {
    expect(replies(['hello\r\n'])[0]?.kind).toBe('error');
    expect(replies(['250-a\r\n251 b\r\n'])[0]).toEqual({ kind: 'error', detail: 'reply code changed within a reply (250 then 251)' });
    expect(replies([`${'250-x\r\n'.repeat(LMTP_MAX_REPLY_LINES + 1)}`])[0]?.kind).toBe('error');
    expect(replies([`250 ${'x'.repeat(5000)}`])[0]).toEqual({ kind: 'error', detail: 'reply line too long' });
    expect(replies(['123 low\r\n'])[0]?.kind).toBe('error');
  });
});
