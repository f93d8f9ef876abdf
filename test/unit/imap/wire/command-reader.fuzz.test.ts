/**
 * Property tests (ecosystem.md §2.4 R4): any split of a pipelined transcript gives the same
 * events as the whole; random bytes in random chunk sizes (Dovecot fuzz-imap-parser's trick)
 * never throw and never leave more than one line buffered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ImapCommandReader } from '../../../../src/imap/wire/command-reader.js';
import type { ImapCommandEvent } from '../../../../src/imap/wire/command-reader.js';
import { encodeCommand } from '../../../../src/imap/wire/encode.js';
import { ImapResponseReader } from '../../../../src/imap/wire/response-reader.js';
import { readCommands, readResponses, split } from './helpers.js';

const FIXED = [
  'a NOOP\r\n',
  'b CAPABILITY\n',
  'c ID ("name" "x" "version" NIL)\r\n',
  'd ID ({4+}\r\nname {2}\r\nxy)\r\n',
  'e LOGIN "unterminated {5+}\r\nf NOOP\r\n',
  'g FOOBAR {10+}\r\ntest test \r\n',
  'h LOGIN {4294967296}\r\n',
  'GET / HTTP/1.1\r\n',
  '\r\n',
  'i LOGIN us\xe4r p\r\n',
  'j AUTHENTICATE PLAIN\r\nAGEAYg==\r\n',
  'k AUTHENTICATE LOGIN\r\ndXNlcg==\r\n{5}\r\n*\r\n',
  'l X ((((((x))))))\r\n',
  'm LOGIN ~{3}\r\n',
  'n LOGIN {3+}\r\na\0b x\r\n',
  'o STARTTLS\r\n',
];

const rawAfterAuth = {
  onEvent: (ev: ImapCommandEvent, reader: ImapCommandReader): void => {
    if (ev.kind === 'command' && ev.name === 'AUTHENTICATE') reader.readRawLine();
    if (ev.kind === 'line' && ev.line.toString() !== '*' && !ev.line.toString().startsWith('AGE')) reader.readRawLine();
  },
};

const credential = fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a)));
const login = fc
  .tuple(credential, credential, fc.boolean())
  .map(([u, p, literalPlus]) => {
    try {
      return Buffer.concat(encodeCommand('L1', 'LOGIN', [u, p], { literalPlus }).parts);
    } catch {
      return Buffer.from('L2 LOGIN nul refused\r\n');
    }
  });
const transcript = fc.array(fc.oneof(fc.constantFrom(...FIXED.map((x) => Buffer.from(x, 'latin1'))), login), { minLength: 1, maxLength: 12 }).map((parts) => Buffer.concat(parts));
const cuts = fc.array(fc.nat({ max: 4000 }), { maxLength: 40 });

describe('ImapCommandReader properties', () => {
  it('any split of a pipelined transcript yields the same events', () => {
    fc.assert(
      fc.property(transcript, cuts, (input, at) => {
        const whole = readCommands(input, 'whole', {}, rawAfterAuth).events;
        expect(readCommands(input, at, {}, rawAfterAuth).events).toEqual(whole);
      }),
      { numRuns: 1500 },
    );
  });

  it('byte-by-byte feeding of the fixed transcript equals whole feeding', () => {
    const input = Buffer.from(FIXED.join(''), 'latin1');
    const whole = readCommands(input, 'whole', {}, rawAfterAuth).events;
    expect(whole.length).toBeGreaterThan(FIXED.length);
    expect(readCommands(input, 'bytes', {}, rawAfterAuth).events).toEqual(whole);
  });

  it('100 000 random inputs in random chunk sizes: no throw, bounded buffering', () => {
    const limits = { maxLineLength: 64, maxLiteralSize: 32, maxArgs: 8, maxListDepth: 2 };
    const tokens = fc.constantFrom('a ', 'LOGIN ', 'ID ', ' ', '{3}\r\n', '{2+}\r\n', '{9-}\r\n', '~{1}\r\n', '{99999999999}\r\n', '"', '\\', '(', ')', '\r\n', '\n', '\r', 'NIL', '\0', '\xff', '*', '+', 'x');
    const biased = fc.array(fc.oneof(tokens, fc.string({ maxLength: 4 })), { maxLength: 40 }).map((t) => Buffer.from(t.join(''), 'latin1'));
    const input = fc.oneof(fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)), biased);
    fc.assert(
      fc.property(input, fc.integer({ min: 1, max: 256 }), fc.boolean(), (bytes, chunkSize, rawMode) => {
        const reader = new ImapCommandReader(limits);
        for (let off = 0; off < bytes.length; off += chunkSize) {
          reader.push(bytes.subarray(off, off + chunkSize));
          for (let ev = reader.next(); ev !== null; ev = reader.next()) {
            if (rawMode && ev.kind === 'command') reader.readRawLine();
            if (ev.kind === 'error' && ev.fatal) expect(reader.failed).toBe(true);
          }
          expect(reader.buffered).toBeLessThanOrEqual(limits.maxLineLength + 1);
        }
        reader.drain();
      }),
      { numRuns: 100_000 },
    );
  });
});

describe('ImapResponseReader properties', () => {
  const responses = fc
    .array(fc.constantFrom('* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n', '* ID ("name" {7}\r\nDovecot)\r\n', 'a NO x {5}\r\n', '+ abc=\r\n', '* 1 FETCH (BODY[] {0}\r\n)\n', 'a OK done\r\n'), { minLength: 1, maxLength: 10 })
    .map((r) => Buffer.from(r.join('')));

  it('any split yields the same responses', () => {
    fc.assert(
      fc.property(responses, cuts, (input, at) => {
        expect(readResponses(input, at)).toEqual(readResponses(input));
      }),
      { numRuns: 1000 },
    );
  });

  it('random bytes never throw and stay bounded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (bytes, chunkSize) => {
        const reader = new ImapResponseReader({ maxResponseSize: 100 });
        for (const chunk of split(Buffer.from(bytes), Array.from({ length: Math.ceil(bytes.length / chunkSize) }, (_, i) => i * chunkSize))) {
          reader.push(chunk);
          while (reader.next() !== null);
          expect(reader.buffered).toBeLessThanOrEqual(100);
        }
      }),
      { numRuns: 20_000 },
    );
  });
});
