/**
 * R4 for the pre-auth parsers that had no random-bytes test yet: the POP3 and LMTP line
 * readers and command splits, LMTP paths/parameters/xtext, the DATA decoder, backend reply
 * readers, the SASL base64 layer in front of every server mechanism, and IMAP ID / argument
 * accessors. Inputs are random or token-biased bytes fed in random chunk sizes 1..256
 * (Dovecot fuzz-imap-parser's trick); each property checks that nothing throws, that
 * chunking never changes the outcome, and that buffering stays bounded. Fixed seeds keep a
 * failure reproducible; run counts keep the file to a few seconds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ImapCommandReader } from '../../../src/imap/wire/command-reader.js';
import { asAString, asAtom, asNString, readIdParams } from '../../../src/imap/wire/args.js';
import { IMAP_ID_MAX_PARAMS, IMAP_ID_MAX_VALUE_LENGTH } from '../../../src/imap/wire/limits.js';
import { mailboxText, MAX_PATH_LENGTH, parsePathArgs, splitDetail, xtextDecode } from '../../../src/lmtp/address.js';
import { DotDecoder } from '../../../src/lmtp/dot.js';
import { LineReader, parseCommand as lmtpCommand, SmtpReplyReader } from '../../../src/lmtp/wire.js';
import { parseCommand as pop3Command, Pop3LineReader, splitArgs } from '../../../src/pop3/wire.js';
import { decodeForward } from '../../../src/backend/xclient.js';
import { createServerMech, decodeSaslBase64, SERVER_MECHANISMS, type SaslStep } from '../../../src/sasl/index.js';

const SEED = 0x5eed_0004;
const params = (numRuns: number): fc.Parameters<unknown> => ({ numRuns, seed: SEED });

/** Random bytes, or bytes made of the tokens the parsers care about (much likelier to reach deep states). */
function bytesFrom(tokens: readonly string[], maxLength = 300): fc.Arbitrary<Buffer> {
  const biased = fc.array(fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 3 })), { maxLength: 60 }).map((t) => Buffer.from(t.join(''), 'latin1'));
  return fc.oneof(fc.uint8Array({ maxLength: maxLength }).map((a) => Buffer.from(a)), biased);
}

const chunkSize = fc.integer({ min: 1, max: 256 });

function* chunks(b: Buffer, size: number): Generator<Buffer> {
  for (let off = 0; off < b.length; off += size) yield b.subarray(off, off + size);
}

type Line = string | 'too-long';

/** A line reader driven as a front-end drives it; stops at the first too-long (the session closes). */
function lines(reader: { push(b: Buffer): void; next(): { kind: 'line'; line: Buffer } | { kind: 'too-long' } | null; readonly buffered: number }, input: Buffer, size: number, max: number): Line[] {
  const out: Line[] = [];
  for (const c of chunks(input, size)) {
    reader.push(c);
    for (let ev = reader.next(); ev !== null; ev = reader.next()) {
      if (ev.kind === 'too-long') {
        out.push('too-long');
        return out;
      }
      out.push(ev.line.toString('latin1'));
    }
    expect(reader.buffered).toBeLessThanOrEqual(max + 1);
  }
  return out;
}

describe('POP3 command lines', () => {
  const tokens = ['USER ', 'PASS ', 'AUTH ', 'PLAIN ', 'APOP ', 'STLS', 'CAPA', 'QUIT', ' ', '\r\n', '\n', '\r', '\0', '\xff', '=', '*', 'x'.repeat(40)];
  it('random bytes at random chunk sizes: the same lines as whole, bounded, commands always split', () => {
    const max = 64;
    fc.assert(
      fc.property(bytesFrom(tokens), chunkSize, (input, size) => {
        const got = lines(new Pop3LineReader(max), input, size, max);
        expect(got).toEqual(lines(new Pop3LineReader(max), input, input.length || 1, max));
        for (const l of got) {
          if (l === 'too-long') continue;
          const cmd = pop3Command(Buffer.from(l, 'latin1'));
          expect(cmd.name.length).toBeLessThanOrEqual(33);
          expect(Array.isArray(splitArgs(cmd.args))).toBe(true);
        }
      }),
      params(10_000),
    );
  });
});

describe('LMTP command lines, paths and parameters', () => {
  const tokens = ['LHLO x', 'MAIL FROM:', 'RCPT TO:', '<', '>', '<>', '@', '"', '\\', ' ', 'SIZE=', 'BODY=8BITMIME', 'ORCPT=rfc822;', '+2B', '+', '=', '\r\n', '\n', '\0', '\xff', 'DATA', 'XCLIENT ADDR=', '.'];
  it('random bytes at random chunk sizes: the same lines as whole, bounded; every line parses to a verdict', () => {
    const max = 128;
    fc.assert(
      fc.property(bytesFrom(tokens), chunkSize, (input, size) => {
        const got = lines(new LineReader(max), input, size, max);
        expect(got).toEqual(lines(new LineReader(max), input, input.length || 1, max));
        for (const l of got) {
          if (l === 'too-long') continue;
          const cmd = lmtpCommand(Buffer.from(l, 'latin1'));
          expect(cmd.verb.length).toBeLessThanOrEqual(17);
          for (const keyword of ['FROM', 'TO'] as const) {
            const p = parsePathArgs(cmd.args, keyword);
            if (!p.ok) expect(typeof p.error).toBe('string');
            else if (p.mailbox !== null) {
              expect(mailboxText(p.mailbox).length).toBeLessThanOrEqual(MAX_PATH_LENGTH);
              const r = splitDetail(p.mailbox, '+-');
              expect(typeof r.username).toBe('string');
            }
          }
        }
      }),
      params(8_000),
    );
  });

  it('xtext and FORWARD values from a trusted peer never throw', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        const v = xtextDecode(s);
        expect(v === null || typeof v === 'string').toBe(true);
        expect(decodeForward(s)).toBeInstanceOf(Map);
      }),
      params(10_000),
    );
  });
});

describe('LMTP DATA', () => {
  const tokens = ['.', '..', '\r\n', '\n', '\r', '\r\n.\r\n', '\n.\n', '.\r\n', 'a', '\0'];
  it('random content at random chunk sizes: the same message, end and rest as whole', () => {
    const decode = (input: Buffer, size: number): { data: string; done: boolean; rest: string; bareLf: number } => {
      const d = new DotDecoder();
      const data: Buffer[] = [];
      const rest: Buffer[] = [];
      for (const c of chunks(input, size)) {
        const r = d.push(c);
        data.push(...r.data);
        if (r.done) rest.push(r.rest);
      }
      return { data: Buffer.concat(data).toString('latin1'), done: d.done, rest: Buffer.concat(rest).toString('latin1'), bareLf: d.bareLf };
    };
    fc.assert(
      fc.property(bytesFrom(tokens, 400), chunkSize, (input, size) => {
        const whole = decode(input, input.length || 1);
        expect(decode(input, size)).toEqual(whole);
        if (whole.done) expect(input.toString('latin1').endsWith(whole.rest)).toBe(true);
      }),
      params(20_000),
    );
  });
});

describe('backend reply readers (what a hostile backend can send)', () => {
  const tokens = ['220 ', '250-', '250 ', '354 ', '451 4.4.0 ', '550-', '2.0.0 ', '\r\n', '\n', '999 ', 'x', '\0'];
  it('SMTP/LMTP replies: no throw, chunking does not matter, an error is final', () => {
    const read = (input: Buffer, size: number): string[] => {
      const r = new SmtpReplyReader();
      const out: string[] = [];
      for (const c of chunks(input, size)) {
        r.push(c);
        for (let ev = r.next(); ev !== null; ev = r.next()) {
          out.push(ev.kind === 'error' ? 'error' : `${ev.reply.code} ${ev.reply.enhanced ?? ''} ${ev.reply.lines.join('|')}`);
          if (ev.kind === 'error') {
            expect(r.next()).toEqual(ev);
            return out;
          }
        }
      }
      return out;
    };
    fc.assert(
      fc.property(bytesFrom(tokens), chunkSize, (input, size) => {
        expect(read(input, size)).toEqual(read(input, input.length || 1));
      }),
      params(20_000),
    );
  });
});

describe('SASL: the base64 layer in front of every server mechanism', () => {
  const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');
  const line = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom('=', '', '*', 'AGFsaWNlAHB3', 'YWxpY2U=', '====', 'A', 'AA==', 'AA=A', b64('\0a\0b'), b64('a\0b\0c\0d'), b64('alice 0123456789abcdef0123456789abcdef')),
    fc.uint8Array({ maxLength: 60 }).map((a) => Buffer.from(a).toString('base64')),
  );
  it('random client lines (IR and steps) never throw and end in done, fail or a bounded challenge', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SERVER_MECHANISMS), fc.option(line, { nil: undefined }), fc.array(line, { maxLength: 5 }), (name, ir, steps) => {
        const mech = createServerMech(name, { hostname: 'fuzz.example', tlsClientCertUser: 'certuser' });
        expect(mech).toBeDefined();
        if (mech === undefined) return;
        const initial = ir === undefined ? null : decodeSaslBase64(ir);
        let last: SaslStep = mech.start(initial);
        for (const l of steps) {
          if (last.kind !== 'challenge') break;
          const decoded = decodeSaslBase64(l);
          if (decoded === null) break; // the front-end answers BAD/-ERR and ends the exchange
          last = mech.step(decoded);
        }
        expect(['challenge', 'done', 'fail']).toContain(last.kind);
        if (last.kind === 'challenge') expect(last.data.length).toBeLessThan(512);
        if (last.kind === 'done' && last.credentials.type !== 'external') expect(last.credentials.authcid).not.toBe('');
      }),
      params(20_000),
    );
  });
});

describe('IMAP ID and argument accessors over random commands', () => {
  const tokens = ['a ID ', 'a LOGIN ', '(', ')', 'NIL', '"', '\\', '{3}\r\nabc', '{2+}\r\nxy', ' ', '"x-originating-ip" ', '"1.2.3.4"', '\r\n', '\0', '\xff', 'atom'];
  it('random bytes: readIdParams and the accessors never throw and respect the ID limits', () => {
    fc.assert(
      fc.property(bytesFrom(tokens), chunkSize, (input, size) => {
        const reader = new ImapCommandReader({ maxLineLength: 256, maxLiteralSize: 64 });
        for (const c of chunks(input, size)) {
          reader.push(c);
          for (let ev = reader.next(); ev !== null; ev = reader.next()) {
            if (ev.kind !== 'command') continue;
            for (const arg of ev.args) {
              asAString(arg);
              asNString(arg);
              asAtom(arg);
            }
            const id = readIdParams(ev.args);
            if (id.ok) {
              expect(id.params.length).toBeLessThanOrEqual(IMAP_ID_MAX_PARAMS);
              for (const [, v] of id.params) if (v !== null) expect(v.length).toBeLessThanOrEqual(IMAP_ID_MAX_VALUE_LENGTH);
            }
          }
        }
      }),
      params(20_000),
    );
  });
});
