/**
 * The framing cases of nginx-tests `mail_imap.t` (ecosystem.md §2.2), at the wire layer: what
 * the front-end receives for each input, whole, byte by byte and at random split points.
 */
import { describe, expect, it } from 'vitest';
import { atom, b, command, expectCommands, readCommands, str } from './helpers.js';

describe('nginx-tests mail_imap.t', () => {
  it('login without arguments parses (the front-end replies BAD)', () => {
    expectCommands('a01 LOGIN\r\n', [command('a01', 'LOGIN', [])]);
  });

  it('quoted strings with \\\\ and \\"', () => {
    expectCommands('a01 LOGIN "te\\\\\\"st@example.com" "se\\\\\\"cret"\r\n', [command('a01', 'LOGIN', [str('te\\"st@example.com'), str('se\\"cret')])]);
  });

  it('synchronising literals: continuation for user and password', () => {
    expectCommands('a01 LOGIN {18}\r\nte\\"st@example.com {8}\r\nse\\"cret\r\n', [
      { kind: 'continue-literal', tag: 'a01', name: 'LOGIN', size: 18 },
      { kind: 'continue-literal', tag: 'a01', name: 'LOGIN', size: 8 },
      command('a01', 'LOGIN', [str('te\\"st@example.com'), str('se\\"cret')]),
    ]);
  });

  it('non-synchronising literals', () => {
    expectCommands('a01 LOGIN {18+}\r\nte\\"st@example.com {8+}\r\nse\\"cret\r\n', [command('a01', 'LOGIN', [str('te\\"st@example.com'), str('se\\"cret')])]);
  });

  it('backslash in a literal, then a quoted string', () => {
    expectCommands('a01 LOGIN {18+}\r\nte\\"st@example.com "se\\\\\\"cret"\r\n', [command('a01', 'LOGIN', [str('te\\"st@example.com'), str('se\\"cret')])]);
  });

  it('pipelined invalid command then NOOP', () => {
    expectCommands('a01 INVALID COMMAND WITH ARGUMENTS\r\na02 NOOP\r\n', [
      command('a01', 'INVALID', [atom('COMMAND'), atom('WITH'), atom('ARGUMENTS')]),
      command('a02', 'NOOP', []),
    ]);
  });

  it('unknown command with a {10+} literal: the literal is an argument, never a command', () => {
    expectCommands('a03 FOOBAR {10+}\r\ntest test \r\na04 NOOP\r\n', [command('a03', 'FOOBAR', [str('test test ')]), command('a04', 'NOOP', [])]);
  });

  it('syntactically invalid command with a {n+} literal holding a command: skipped, not run', () => {
    expectCommands('a03 LOGIN "open {12+}\r\na05 LOGOUT\r\n\r\na04 NOOP\r\n', [
      { kind: 'error', error: 'syntax', tag: 'a03', fatal: false, detail: 'unterminated quoted string' },
      command('a04', 'NOOP', []),
    ]);
    expectCommands('a03 FOO"BAR {12+}\r\na05 LOGOUT\r\n\r\na04 NOOP\r\n', [
      { kind: 'error', error: 'tag-invalid', fatal: false, detail: 'invalid command name' },
      command('a04', 'NOOP', []),
    ]);
  });

  it('invalid command with a sync literal: no continuation, the client will not send it', () => {
    expectCommands('a03 LOGIN "open {12}\r\na04 NOOP\r\n', [
      { kind: 'error', error: 'syntax', tag: 'a03', fatal: false, detail: 'unterminated quoted string' },
      command('a04', 'NOOP', []),
    ]);
  });

  it('pipelined LOGIN + LOGOUT: the consumer stops after LOGIN, LOGOUT waits for the splice', () => {
    const stopAfter = (ev: { kind: string }): boolean => ev.kind === 'command';
    for (const chunking of ['whole', 'bytes'] as const) {
      const { events, reader } = readCommands('a01 LOGIN test@example.com secret\r\na02 LOGOUT\r\n', chunking, {}, { stopAfter });
      expect(events).toEqual([command('a01', 'LOGIN', [atom('test@example.com'), atom('secret')])]);
      expect(reader.drain()).toEqual(b('a02 LOGOUT\r\n'));
    }
  });

  it('AUTHENTICATE without mechanism parses (the front-end replies BAD)', () => {
    expectCommands('1 AUTHENTICATE\r\n', [command('1', 'AUTHENTICATE', [])]);
  });
});
