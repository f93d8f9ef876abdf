import { describe, expect, it } from 'vitest';
import { asAString, asAtom, asNString } from '../../../../src/imap/wire/args.js';
import { ImapCommandReader } from '../../../../src/imap/wire/command-reader.js';
import type { ImapCommandEvent } from '../../../../src/imap/wire/command-reader.js';
import { atom, b, command, expectCommands, readCommands, str } from './helpers.js';

const syntax = (tag: string, detail: string): unknown => ({ kind: 'error', error: 'syntax', tag, fatal: false, detail });
const tagInvalid = (detail: string): unknown => ({ kind: 'error', error: 'tag-invalid', fatal: false, detail });
const cont = (tag: string, name: string, size: number): unknown => ({ kind: 'continue-literal', tag, name, size });

describe('ImapCommandReader: commands and arguments', () => {
  it.each([
    ['simple', 'a1 NOOP\r\n', [command('a1', 'NOOP', [], 7)]],
    ['name is upper-cased', 'x capability\r\n', [command('x', 'CAPABILITY', [])]],
    ['atoms', 'a LOGIN alice secret\r\n', [command('a', 'LOGIN', [atom('alice'), atom('secret')], 20)]],
    ['NIL in any case', 'a ID nil\r\n', [command('a', 'ID', [{ type: 'nil' }])]],
    ['quoted', 'a LOGIN "al ice" ""\r\n', [command('a', 'LOGIN', [str('al ice'), str('')])]],
    ['quoted escapes', 'a LOGIN "a\\\\b" "c\\"d"\r\n', [command('a', 'LOGIN', [str('a\\b'), str('c"d')])]],
    ['8-bit in quoted is kept as bytes', 'a LOGIN "p\xe4ss" x\r\n', [command('a', 'LOGIN', [str('p\xe4ss'), atom('x')])]],
    ['lenient atom characters (flags, wildcards, ])', 'a X \\Seen * % ]\r\n', [command('a', 'X', ['\\Seen', '*', '%', ']'].map(atom))]],
    ['list', 'a ID ("name" "mutt" "version" NIL)\r\n', [command('a', 'ID', [{ type: 'list', items: [str('name'), str('mutt'), str('version'), { type: 'nil' }] }])]],
    ['empty and nested lists', 'a X () (a (b))\r\n', [command('a', 'X', [{ type: 'list', items: [] }, { type: 'list', items: [atom('a'), { type: 'list', items: [atom('b')] }] }])]],
    ['bare LF ends a line (as in Dovecot)', 'a NOOP\nb NOOP\n', [command('a', 'NOOP', []), command('b', 'NOOP', [])]],
    ['one trailing space tolerated', 'a NOOP \r\nb LOGIN u p \r\n', [command('a', 'NOOP', []), command('b', 'LOGIN', [atom('u'), atom('p')])]],
    ['tag with ] and digits', 'A]1.2 NOOP\r\n', [command('A]1.2', 'NOOP', [])]],
    ['AUTHENTICATE with SASL-IR', 'a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n', [command('a', 'AUTHENTICATE', [atom('PLAIN'), atom('AGFsaWNlAHNlY3JldA==')])]],
    ['sync literals', 'a LOGIN {5}\r\nalice {6}\r\nsecret\r\n', [cont('a', 'LOGIN', 5), cont('a', 'LOGIN', 6), command('a', 'LOGIN', [str('alice'), str('secret')], 15, 11)]],
    ['LITERAL+ needs no continuation', 'a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n', [command('a', 'LOGIN', [str('alice'), str('secret')], 17, 11)]],
    ['LITERAL- up to 4096', 'a LOGIN {5-}\r\nalice x\r\n', [command('a', 'LOGIN', [str('alice'), atom('x')])]],
    ['literal keeps CR, LF, quotes and backslashes', 'a LOGIN {6+}\r\n"\\\r\n{} x\r\n', [command('a', 'LOGIN', [str('"\\\r\n{}'), atom('x')])]],
    ['empty sync literal', 'a LOGIN {0}\r\n x\r\n', [cont('a', 'LOGIN', 0), command('a', 'LOGIN', [str(''), atom('x')])]],
    ['literal inside a list', 'a ID ({4+}\r\nname {3+}\r\nfoo)\r\n', [command('a', 'ID', [{ type: 'list', items: [str('name'), str('foo')] }])]],
  ])('%s', (_name, input, expected) => {
    expectCommands(input, expected);
  });
});

describe('ImapCommandReader: syntax errors resynchronise at the end of the command', () => {
  it.each([
    ['unterminated quote', 'a LOGIN "alice\r\nb NOOP\r\n', [syntax('a', 'unterminated quoted string'), command('b', 'NOOP', [])]],
    ['bad escape', 'a LOGIN "a\\nb" x\r\n', [syntax('a', 'invalid escape in quoted string')]],
    ['unbalanced open', 'a ID ("a" "b"\r\n', [syntax('a', 'unbalanced parenthesis')]],
    ['unbalanced close', 'a ID "a")\r\n', [syntax('a', 'unbalanced parenthesis')]],
    ['8-bit in atom', 'a LOGIN p\xe4ss x\r\n', [syntax('a', '8-bit data in atom')]],
    ['8-bit starting an atom', 'a LOGIN \xe4 x\r\n', [syntax('a', '8-bit data in atom')]],
    ['double space', 'a LOGIN  u p\r\n', [syntax('a', 'unexpected space')]],
    ['missing space', 'a LOGIN "u""p"\r\n', [syntax('a', 'missing space between arguments')]],
    ['atom then quote', 'a LOGIN u"p"\r\n', [syntax('a', 'invalid character in atom')]],
    ['{ in the middle of a line', 'a LOGIN {5} x\r\n', [syntax('a', 'literal not at the end of the line')]],
    ['literal glued to an atom', 'a LOGIN u{1}\r\n', [syntax('a', 'missing space before literal')]],
    ['missing command name', 'a\r\n', [syntax('a', 'missing command name')]],
    ['NUL in literal', 'a LOGIN {3+}\r\na\0b x\r\nb NOOP\r\n', [syntax('a', 'NUL in literal'), command('b', 'NOOP', [])]],
    ['literal8 (sync) refused without continuation', 'a LOGIN ~{3}\r\nb NOOP\r\n', [syntax('a', 'literal8 is not accepted before login'), command('b', 'NOOP', [])]],
    ['literal8 (non-sync) skipped', 'a LOGIN ~{10+}\r\nc LOGOUT\r\n\r\nb NOOP\r\n', [syntax('a', 'literal8 is not accepted before login'), command('b', 'NOOP', [])]],
  ])('%s', (_name, input, expected) => {
    expectCommands(input, expected);
  });

  it.each([
    ['empty line', '\r\n', 'empty command line'],
    ['leading space', ' a NOOP\r\n', 'missing tag'],
    ['tag with (', 'a( NOOP\r\n', 'invalid tag'],
    ['tag +', '+ NOOP\r\n', 'invalid tag'],
    ['tag *', '* OK hi\r\n', 'invalid tag'],
    ['tag with /', 'a/b NOOP\r\n', 'invalid tag'],
    ['tag with 8-bit', '\xe4 NOOP\r\n', 'invalid tag'],
    ['literal as tag', '{5}\r\n', 'missing tag'],
    ['literal glued to tag', 'a{5}\r\n', 'invalid tag'],
    ['command name not a word', 'a LOG/IN x\r\n', 'invalid command name'],
    ['literal glued to name', 'a LOGIN{5}\r\n', 'invalid command name'],
  ])('tag-invalid: %s (never echoed)', (_name, input, detail) => {
    expectCommands(input, [tagInvalid(detail)]);
  });
});

describe('ImapCommandReader: raw lines, rejection, drain', () => {
  const authDriver = {
    onEvent: (ev: ImapCommandEvent, reader: ImapCommandReader): void => {
      if (ev.kind === 'command' && ev.name === 'AUTHENTICATE') reader.readRawLine();
      if (ev.kind === 'line' && ev.line.toString() !== '*') reader.readRawLine();
    },
  };

  it('AUTHENTICATE continuation lines are returned raw, then command mode resumes', () => {
    expectCommands(
      'a AUTHENTICATE LOGIN\r\ndXNlcg==\r\n{5}\r\n*\r\nb NOOP\r\n',
      [command('a', 'AUTHENTICATE', [atom('LOGIN')]), { kind: 'line', line: b('dXNlcg==') }, { kind: 'line', line: b('{5}') }, { kind: 'line', line: b('*') }, command('b', 'NOOP', [])],
      {},
      authDriver,
    );
  });

  it('a raw line is bounded by maxLineLength', () => {
    const { events } = readCommands(`a AUTHENTICATE PLAIN\r\n${'A'.repeat(100)}\r\n`, 'bytes', { maxLineLength: 50 }, authDriver);
    expect(events.at(-1)).toEqual({ kind: 'error', error: 'line-too-long', fatal: true, detail: 'line too long' });
  });

  it('readRawLine() inside a command is a bug', () => {
    const r = new ImapCommandReader();
    r.push(b('a LOGIN {3}\r\n'));
    expect(r.next()).toEqual(cont('a', 'LOGIN', 3));
    expect(() => r.readRawLine()).toThrow();
  });

  it('rejectLiteral() drops the command; the client never sends the literal', () => {
    const r = new ImapCommandReader();
    r.push(b('a AUTHENTICATE {5}\r\n'));
    expect(r.next()).toEqual(cont('a', 'AUTHENTICATE', 5));
    r.rejectLiteral();
    r.push(b('b NOOP\r\n'));
    expect(r.next()).toEqual(command('b', 'NOOP', []));
    expect(() => r.rejectLiteral()).toThrow();
  });

  it('STARTTLS: pipelined plaintext is returned by drain() and never parsed', () => {
    const r = new ImapCommandReader();
    r.push(b('a STARTTLS\r\nb CAPABILITY\r\nc LOG'));
    expect(r.next()).toEqual(command('a', 'STARTTLS', []));
    expect(r.drain()).toEqual(b('b CAPABILITY\r\nc LOG'));
    expect(r.next()).toBeNull();
    expect(r.buffered).toBe(0);
  });

  it('drain() after a partial line drops it', () => {
    const r = new ImapCommandReader();
    r.push(b('a LOGIN {5}\r\nal'));
    expect(r.next()).toEqual(cont('a', 'LOGIN', 5));
    expect(r.next()).toBeNull();
    expect(r.drain()).toEqual(b(''));
    r.push(b('b NOOP\r\n'));
    expect(r.next()).toEqual(command('b', 'NOOP', []));
  });

  it('argument accessors', () => {
    const { events } = readCommands('a LOGIN alice "p w" {3+}\r\nabc NIL (x)\r\n');
    const ev = events[0];
    if (ev?.kind !== 'command') throw new Error('expected a command');
    expect(ev.args.map((a) => asAString(a)?.toString())).toEqual(['alice', 'p w', 'abc', 'NIL', undefined]);
    expect(ev.args.map((a) => asNString(a))).toEqual([undefined, b('p w'), b('abc'), null, undefined]);
    expect(asAtom(ev.args[0])).toBe('ALICE');
    expect(asAtom(ev.args[1])).toBeUndefined();
  });

  it('option validation', () => {
    expect(() => new ImapCommandReader({ maxLineLength: -1 })).toThrow(RangeError);
    expect(() => new ImapCommandReader({ maxArgs: 1.5 })).toThrow(RangeError);
  });
});
