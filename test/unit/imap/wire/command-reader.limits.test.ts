/**
 * Hard limits and pre-auth attacks (ecosystem.md §2.4 R6, R7): each limit has its test, and
 * nothing is buffered in proportion to what a client merely announces.
 */
import { describe, expect, it } from 'vitest';
import { readIdParams } from '../../../../src/imap/wire/args.js';
import { ImapCommandReader } from '../../../../src/imap/wire/command-reader.js';
import {
  IMAP_ID_MAX_PARAMS,
  IMAP_MAX_LINE_LENGTH,
  IMAP_MAX_TAG_LENGTH,
  IMAP_PREAUTH_MAX_ARGS,
  IMAP_PREAUTH_MAX_LIST_DEPTH,
  IMAP_PREAUTH_MAX_LITERAL_SIZE,
} from '../../../../src/imap/wire/limits.js';
import { b, command, expectCommands, readCommands } from './helpers.js';

const lineTooLong = (tag?: string): unknown => ({ kind: 'error', error: 'line-too-long', ...(tag === undefined ? {} : { tag }), fatal: true, detail: 'line too long' });
const literalTooLarge = (tag: string | undefined, size: number, fatal: boolean): unknown => ({
  kind: 'error',
  error: 'literal-too-large',
  ...(tag === undefined ? {} : { tag }),
  size,
  fatal,
  detail: 'literal too large',
});

describe('line length (IMAP_MAX_LINE_LENGTH)', () => {
  it('defaults match Dovecot', () => {
    expect([IMAP_MAX_LINE_LENGTH, IMAP_MAX_TAG_LENGTH, IMAP_PREAUTH_MAX_LITERAL_SIZE]).toEqual([8192, 126, 8192]);
  });

  it('a line of exactly maxLineLength bytes (CRLF excluded) is accepted; one more is fatal', () => {
    const ok = `a LOGIN u ${'p'.repeat(IMAP_MAX_LINE_LENGTH - 10)}`;
    expect(ok.length).toBe(IMAP_MAX_LINE_LENGTH);
    expect(readCommands(`${ok}\r\n`).events).toEqual([command('a', 'LOGIN', expect.any(Array), IMAP_MAX_LINE_LENGTH)]);
    expect(readCommands(`${ok}p\r\n`).events).toEqual([lineTooLong('a')]);
    expect(readCommands(`${ok}p\r\n`, 'bytes').events).toEqual([lineTooLong('a')]);
  });

  it('literal payloads do not count; the lines around them do, together', () => {
    const opts = { maxLineLength: 20, maxLiteralSize: 100 };
    expect(readCommands(`a LOGIN {50+}\r\n${'x'.repeat(50)} y\r\n`, 'whole', opts).events).toEqual([command('a', 'LOGIN', expect.any(Array), 15, 50)]);
    expect(readCommands(`a LOGIN {5+}\r\nxxxxx ${'y'.repeat(20)}\r\n`, 'whole', opts).events).toEqual([lineTooLong('a')]);
  });

  it('a 1 MB line is refused without buffering it, whole or streamed', () => {
    const mb = Buffer.alloc(1 << 20, 0x61);
    const whole = readCommands(mb);
    expect(whole.events).toEqual([lineTooLong()]);
    expect(whole.reader.buffered).toBe(0);
    expect(whole.reader.failed).toBe(true);
    const streamed = readCommands(Buffer.concat([b('t1 LOGIN '), mb]), Array.from({ length: 1024 }, (_, i) => i * 1024));
    expect(streamed.events).toEqual([lineTooLong('t1')]);
    expect(streamed.maxBuffered).toBeLessThanOrEqual(IMAP_MAX_LINE_LENGTH + 1024);
    expect(streamed.reader.buffered).toBe(0);
  });

  it('after a fatal error nothing more is parsed', () => {
    const r = new ImapCommandReader({ maxLineLength: 10 });
    r.push(b('a LOGIN alice secret\r\nb NOOP\r\n'));
    expect(r.next()).toEqual(lineTooLong('a'));
    r.push(b('c NOOP\r\n'));
    expect(r.next()).toBeNull();
    expect(r.buffered).toBe(0);
  });
});

describe('literal size (IMAP_PREAUTH_MAX_LITERAL_SIZE)', () => {
  it('{4294967296}: tagged error at once, no continuation, nothing allocated, next command works', () => {
    const r = new ImapCommandReader();
    r.push(b('a LOGIN {4294967296}\r\n'));
    expect(r.next()).toEqual(literalTooLarge('a', 4294967296, false));
    expect(r.buffered).toBe(0);
    r.push(b('b NOOP\r\n'));
    expect(r.next()).toEqual(command('b', 'NOOP', []));
  });

  it('{999999999+}: fatal, the connection must close', () => {
    expectCommands('a LOGIN {999999999+}\r\nb NOOP\r\n', [literalTooLarge('a', 999999999, true)]);
  });

  it('an absurd number of digits is Infinity, not a rounding accident', () => {
    expectCommands('a LOGIN {99999999999999999999}\r\n', [literalTooLarge('a', Number.POSITIVE_INFINITY, false)]);
    expectCommands('a LOGIN {0000000000000000000005}\r\nhello x\r\n', [
      { kind: 'continue-literal', tag: 'a', name: 'LOGIN', size: 5 },
      command('a', 'LOGIN', expect.any(Array)),
    ]);
  });

  it('the cap counts all literals of one command together', () => {
    const opts = { maxLiteralSize: 10 };
    expectCommands('a LOGIN {6+}\r\nabcdef {4+}\r\nghij\r\n', [command('a', 'LOGIN', expect.any(Array), 17, 10)], opts);
    expectCommands('a LOGIN {6+}\r\nabcdef {5+}\r\nghijk\r\n', [literalTooLarge('a', 5, true)], opts);
    expectCommands('a LOGIN {6+}\r\nabcdef {5}\r\nb NOOP\r\n', [literalTooLarge('a', 5, false), command('b', 'NOOP', [])], opts);
  });

  it('LITERAL- (RFC 7888): non-sync literals over 4096 are fatal whatever the cap', () => {
    const opts = { maxLiteralSize: 1 << 20 };
    expectCommands(`a LOGIN {4096-}\r\n${'x'.repeat(4096)} y\r\n`, [command('a', 'LOGIN', expect.any(Array))], opts);
    expectCommands('a LOGIN {4097-}\r\n', [literalTooLarge('a', 4097, true)], opts);
  });

  it('a literal buffer grows only as its bytes arrive', () => {
    const r = new ImapCommandReader({ maxLiteralSize: 8192 });
    r.push(b('a LOGIN {8000}\r\n'));
    expect(r.next()).toEqual({ kind: 'continue-literal', tag: 'a', name: 'LOGIN', size: 8000 });
    r.push(b('abc'));
    expect(r.next()).toBeNull();
    expect(r.buffered).toBe(0);
  });
});

describe('tags, arguments, lists', () => {
  it('126-character tag accepted, 127 refused and not echoed', () => {
    expectCommands(`${'t'.repeat(126)} NOOP\r\n`, [command('t'.repeat(126), 'NOOP', [])]);
    expectCommands(`${'t'.repeat(127)} NOOP\r\n`, [{ kind: 'error', error: 'tag-invalid', fatal: false, detail: 'invalid tag' }]);
  });

  it('NUL bytes: in tag, atom, quoted string and literal', () => {
    expectCommands('a\0 NOOP\r\n', [{ kind: 'error', error: 'tag-invalid', fatal: false, detail: 'invalid tag' }]);
    expectCommands('a LOGIN us\0er p\r\n', [{ kind: 'error', error: 'syntax', tag: 'a', fatal: false, detail: 'control character in atom' }]);
    expectCommands('a LOGIN "us\0er" p\r\n', [{ kind: 'error', error: 'syntax', tag: 'a', fatal: false, detail: 'invalid character in quoted string' }]);
    expectCommands('a LOGIN {5+}\r\nus\0er p\r\n', [{ kind: 'error', error: 'syntax', tag: 'a', fatal: false, detail: 'NUL in literal' }]);
  });

  it('ID with 30 parameters is fine; 31 parse but readIdParams refuses them (Dovecot limit)', () => {
    const id = (n: number): string => `a ID (${Array.from({ length: n }, (_, i) => `"k${i}" "v${i}"`).join(' ')})\r\n`;
    for (const [n, ok] of [[IMAP_ID_MAX_PARAMS, true], [IMAP_ID_MAX_PARAMS + 1, false]] as const) {
      const ev = readCommands(id(n)).events[0];
      if (ev?.kind !== 'command') throw new Error('expected a command');
      const res = readIdParams(ev.args);
      expect(res.ok).toBe(ok);
      if (!res.ok) expect(res.reason).toBe('too-many');
      else expect(res.params[29]).toEqual(['k29', 'v29']);
    }
  });

  it('ID value of 1025 bytes is too long; NIL and malformed ID', () => {
    const ev = readCommands(`a ID ("name" "${'x'.repeat(1025)}")\r\n`).events[0];
    if (ev?.kind !== 'command') throw new Error('expected a command');
    expect(readIdParams(ev.args)).toEqual({ ok: false, reason: 'too-long' });
    expect(readIdParams([{ type: 'nil' }])).toEqual({ ok: true, params: [] });
    expect(readIdParams([{ type: 'list', items: [{ type: 'atom', value: 'name' }, { type: 'nil' }] }])).toEqual({ ok: false, reason: 'syntax' });
    expect(readIdParams([])).toEqual({ ok: false, reason: 'syntax' });
  });

  it(`more than ${IMAP_PREAUTH_MAX_ARGS} arguments is a syntax error`, () => {
    expectCommands(`a X ${Array(IMAP_PREAUTH_MAX_ARGS).fill('y').join(' ')}\r\n`, [command('a', 'X', expect.any(Array))]);
    expectCommands(`a X ${Array(IMAP_PREAUTH_MAX_ARGS + 1).fill('y').join(' ')}\r\n`, [{ kind: 'error', error: 'syntax', tag: 'a', fatal: false, detail: 'too many arguments' }]);
  });

  it(`lists nest at most ${IMAP_PREAUTH_MAX_LIST_DEPTH} deep; excessive bracing stops early`, () => {
    const nest = (d: number): string => `a X ${'('.repeat(d)}x${')'.repeat(d)}\r\n`;
    expectCommands(nest(IMAP_PREAUTH_MAX_LIST_DEPTH), [command('a', 'X', expect.any(Array))]);
    const tooDeep = { kind: 'error', error: 'syntax', tag: 'a', fatal: false, detail: 'lists nested too deeply' };
    expectCommands(nest(IMAP_PREAUTH_MAX_LIST_DEPTH + 1), [tooDeep]);
    expectCommands(`a X ${'('.repeat(8000)}\r\n`, [tooDeep]);
  });
});

describe('cross-protocol input (ALPACA, R7)', () => {
  it('an HTTP request gets only untagged errors: nothing is echoed', () => {
    const http = 'GET / HTTP/1.1\r\nHost: imap.example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n';
    const { events } = readCommands(http);
    expect(events).toHaveLength(5);
    for (const ev of events) expect(ev).toMatchObject({ kind: 'error', error: 'tag-invalid' });
    expect(JSON.stringify(events)).not.toMatch(/GET|Host|curl|Accept/);
  });

  it('POST with a body and an HTML payload in the path', () => {
    const { events } = readCommands('POST /<script>alert(1)</script> HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd');
    for (const ev of events) expect(ev).toMatchObject({ kind: 'error', error: 'tag-invalid' });
  });
});
