import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asAString, readIdParams } from '../../../../src/imap/wire/args.js';
import {
  ImapEncodeError,
  astring,
  continuation,
  encodeCommand,
  encodeIdParams,
  quoteIdValue,
  quoted,
  tagged,
  untagged,
} from '../../../../src/imap/wire/encode.js';
import { readCommands } from './helpers.js';

const s = (buf: Buffer): string => buf.toString('latin1');
const sync = { literalPlus: false };
const plus = { literalPlus: true };

function encodeError(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ImapEncodeError) return err.code;
    throw err;
  }
  return undefined;
}

describe('astring', () => {
  it.each([
    ['alice', 'alice'],
    ['user@example.com', 'user@example.com'],
    ['', '""'],
    ['NIL', '"NIL"'],
    ['nil', '"nil"'],
    ['a b', '"a b"'],
    ['te"st\\', '"te\\"st\\\\"'],
    ['x*', '"x*"'],
    ['50%', '"50%"'],
    ['[a]', '"[a]"'],
    ['(x)', '"(x)"'],
    ['{5}', '"{5}"'],
    ['tab\there', '{8}\r\ntab\there'],
    ['a\r\nb LOGOUT', '{11}\r\na\r\nb LOGOUT'],
    ['pässword', '{9}\r\npässword'],
  ])('%j → %j', (value, wire) => {
    expect(astring(value, sync).toString('utf8')).toBe(wire);
  });

  it('LITERAL+ form', () => {
    expect(astring('pässword', plus).toString('utf8')).toBe('{9+}\r\npässword');
  });

  it('NUL is refused everywhere (R22)', () => {
    expect(encodeError(() => astring('us\0er', plus))).toBe('NUL');
    expect(encodeError(() => astring(Buffer.from([0x61, 0, 0xff]), sync))).toBe('NUL');
    expect(encodeError(() => quoted('a\0'))).toBe('NUL');
    expect(encodeError(() => encodeCommand('a', 'LOGIN', ['u', { type: 'string', value: 'p\0' }], plus))).toBe('NUL');
    try {
      astring('secret\0pw', plus);
    } catch (err) {
      expect(String(err)).not.toContain('secret');
    }
  });

  it('quoted() refuses what needs a literal', () => {
    expect(s(quoted('a "b"'))).toBe('"a \\"b\\""');
    expect(encodeError(() => quoted('a\r\n'))).toBe('NOT_QUOTABLE');
    expect(encodeError(() => quoted('é'))).toBe('NOT_QUOTABLE');
  });
});

describe('encodeCommand', () => {
  it('splits at synchronising literals', () => {
    const cmd = encodeCommand('p1', 'LOGIN', ['alice', 'pässword'], sync);
    expect(cmd.parts.map((p) => p.toString('utf8'))).toEqual(['p1 LOGIN alice {9}\r\n', 'pässword\r\n']);
    expect(cmd.needsContinuation).toBe(true);
    const two = encodeCommand('p1', 'LOGIN', ['ä', 'ö'], sync);
    expect(two.parts.map((p) => p.toString('utf8'))).toEqual(['p1 LOGIN {2}\r\n', 'ä {2}\r\n', 'ö\r\n']);
  });

  it('one part with LITERAL+', () => {
    const cmd = encodeCommand('p1', 'LOGIN', ['alice', 'pässword'], plus);
    expect(cmd.parts.map((p) => p.toString('utf8'))).toEqual(['p1 LOGIN alice {9+}\r\npässword\r\n']);
    expect(cmd.needsContinuation).toBe(false);
  });

  it('atoms, strings, NIL and lists', () => {
    const cmd = encodeCommand('t', 'ID', [{ type: 'list', items: [{ type: 'string', value: 'name' }, { type: 'nil' }, { type: 'atom', value: 'X' }, { type: 'astring', value: 'y z' }] }], plus);
    expect(cmd.parts.map(s)).toEqual(['t ID ("name" NIL X "y z")\r\n']);
  });

  it('refuses bad tags, names and atoms', () => {
    expect(encodeError(() => encodeCommand('a b', 'NOOP', [], plus))).toBe('BAD_TAG');
    expect(encodeError(() => encodeCommand('', 'NOOP', [], plus))).toBe('BAD_TAG');
    expect(encodeError(() => encodeCommand('a+', 'NOOP', [], plus))).toBe('BAD_TAG');
    expect(encodeError(() => encodeCommand('a', 'NO OP', [], plus))).toBe('BAD_NAME');
    expect(encodeError(() => encodeCommand('a', 'X', [{ type: 'atom', value: 'a b' }], plus))).toBe('NOT_ATOM');
    expect(encodeError(() => encodeCommand('a', 'X', [{ type: 'atom', value: 'é' }], plus))).toBe('NOT_ATOM');
  });
});

describe('ID values', () => {
  it('quoteIdValue', () => {
    expect(quoteIdValue(null)).toBe('NIL');
    expect(quoteIdValue(undefined)).toBe('NIL');
    expect(quoteIdValue('1.2.3.4')).toBe('"1.2.3.4"');
    expect(quoteIdValue('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(quoteIdValue('x\r\ny\0z')).toBe('"x  y z"');
    const long = quoteIdValue('é'.repeat(1000));
    expect(Buffer.byteLength(long) - 2).toBeLessThanOrEqual(1024);
    expect(long).toBe(`"${'é'.repeat(512)}"`);
  });

  it('encodeIdParams round-trips through the command reader', () => {
    const params: Array<[string, string | null]> = [['name', 'portier'], ['x-originating-ip', '192.0.2.1'], ['x-session-id', 'a"b\\c'], ['x-empty', null]];
    expect(encodeIdParams([])).toBe('NIL');
    const { events } = readCommands(Buffer.from(`p ID ${encodeIdParams(params)}\r\n`, 'utf8'));
    const ev = events[0];
    if (ev?.kind !== 'command') throw new Error('expected a command');
    expect(readIdParams(ev.args)).toEqual({ ok: true, params });
  });
});

describe('reply lines', () => {
  it('tagged / untagged / continuation', () => {
    expect(s(tagged('a1', 'OK', undefined, 'Logged in'))).toBe('a1 OK Logged in\r\n');
    expect(s(tagged('a1', 'NO', 'AUTHENTICATIONFAILED', 'Authentication failed.'))).toBe('a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    expect(s(untagged('BYE', undefined, 'Too many invalid IMAP commands.'))).toBe('* BYE Too many invalid IMAP commands.\r\n');
    expect(s(untagged('CAPABILITY', undefined, 'IMAP4rev1 STARTTLS'))).toBe('* CAPABILITY IMAP4rev1 STARTTLS\r\n');
    expect(s(untagged('ENABLED', undefined, ''))).toBe('* ENABLED\r\n');
    expect(s(continuation('VXNlcm5hbWU6'))).toBe('+ VXNlcm5hbWU6\r\n');
    expect(s(continuation())).toBe('+ \r\n');
  });

  it('text cannot inject a second line; bad tags and codes are bugs', () => {
    expect(s(tagged('a', 'NO', undefined, 'x\r\n* OK evil'))).toBe('a NO x  * OK evil\r\n');
    expect(encodeError(() => tagged('a\r\n', 'OK', undefined, 'x'))).toBe('BAD_TAG');
    expect(encodeError(() => tagged('*', 'OK', undefined, 'x'))).toBe('BAD_TAG');
    expect(encodeError(() => tagged('a', 'OK', 'X]', 'x'))).toBe('BAD_CODE');
    expect(encodeError(() => untagged('OK x', undefined, 'x'))).toBe('BAD_NAME');
  });
});

describe('round trip: whatever astring produces, the reader parses back to the same bytes', () => {
  const noNul = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a.map((x) => (x === 0 ? 1 : x))));
  const interesting = fc.constantFrom(...['', 'NIL', 'a b', '"', '\\', '{5}', '{5+}\r\n', 'a\r\nb NOOP', '*', ']', 'é'].map((x) => Buffer.from(x, 'utf8')));
  const value = fc.oneof(noNul, interesting, fc.string({ maxLength: 50 }).map((x) => Buffer.from(x.replace(/\0/g, ''), 'utf8')));

  it('LOGIN user password, with and without LITERAL+', () => {
    fc.assert(
      fc.property(value, value, fc.boolean(), (user, pass, literalPlus) => {
        const cmd = encodeCommand('p1', 'LOGIN', [user, pass], { literalPlus });
        const { events } = readCommands(Buffer.concat(cmd.parts));
        const last = events.at(-1);
        if (last?.kind !== 'command') return false;
        expect(events.filter((e) => e.kind === 'continue-literal')).toHaveLength(cmd.parts.length - 1);
        expect(last.args.map((a) => asAString(a))).toEqual([user, pass]);
      }),
      { numRuns: 2000 },
    );
  });

  it('NUL anywhere is refused', () => {
    fc.assert(
      fc.property(noNul, noNul, (a, c) => encodeError(() => astring(Buffer.concat([a, Buffer.from([0]), c]), plus)) === 'NUL'),
      { numRuns: 500 },
    );
  });
});
