/**
 * DATA framing both ways: dot-unstuffing, the end only at CRLF "." CRLF, bare LF stored as
 * CRLF (and never an end), pipelined bytes after the end; the decoder gives the same result
 * for any split of its input (fast-check), and encoder then decoder is the identity.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DotDecoder, DotEncoder, dotStuff, dotUnstuff } from '../../../src/lmtp/dot.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (x: Buffer): string => x.toString('latin1');

/** Feed `wire` to a decoder in pieces cut at `cuts`; the message, done flag and rest. */
function decodeSplit(wire: Buffer, cuts: number[]): { message: string; done: boolean; rest: string; bareLf: number } {
  const dec = new DotDecoder();
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((x, y) => x - y);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, wire.length]) {
    parts.push(wire.subarray(prev, p));
    prev = p;
  }
  const out: Buffer[] = [];
  let rest: Buffer[] = [];
  let done = false;
  for (const part of parts) {
    if (done) {
      rest.push(part);
      continue;
    }
    const r = dec.push(part);
    out.push(...r.data);
    if (r.done) {
      done = true;
      rest = [r.rest];
    }
  }
  return { message: s(Buffer.concat(out)), done, rest: s(Buffer.concat(rest)), bareLf: dec.bareLf };
}

describe('DotDecoder', () => {
  const cases: [string, string | null, string][] = [
    ['.\r\n', '', ''],
    ['hello\r\n.\r\n', 'hello\r\n', ''],
    ['..leading\r\n.\r\n', '.leading\r\n', ''],
    ['...two\r\n..\r\n.\r\n', '..two\r\n.\r\n', ''],
    ['.x single dot removed\r\n.\r\n', 'x single dot removed\r\n', ''],
    ['a\r\n.\r\nMAIL FROM:<>\r\n', 'a\r\n', 'MAIL FROM:<>\r\n'],
    ['no end yet\r\n', null, ''],
    ['a.\r\n.b\r\n.\r\n', 'a.\r\nb\r\n', ''],
    // Bare LF: stored as CRLF; "." next to a bare LF is content, not the end (smuggling).
    ['x\n.\n', null, ''],
    ['x\n.\r\n', null, ''],
    ['x\r\n.\nmore\r\n.\r\n', 'x\r\n.\r\nmore\r\n', ''],
    ['x\n.\r\ny\r\n.\r\n', 'x\r\n.\r\ny\r\n', ''],
    ['a\nb\r\n.\r\n', 'a\r\nb\r\n', ''],
    // Bare CR is content.
    ['a\rb\r\n.\r\n', 'a\rb\r\n', ''],
    ['.\rx\r\n.\r\n', '\rx\r\n', ''],
    ['\r\n\r\n.\r\n', '\r\n\r\n', ''],
    ['..\r\n.\r\n', '.\r\n', ''],
  ];
  for (const [wire, message, rest] of cases) {
    it(`decodes ${JSON.stringify(wire)}`, () => {
      const r = decodeSplit(b(wire), []);
      expect(r.done).toBe(message !== null);
      if (message !== null) {
        expect(r.message).toBe(message);
        expect(r.rest).toBe(rest);
      }
    });
  }

  it('counts bare LFs', () => {
    expect(decodeSplit(b('a\nb\nc\r\n.\r\n'), []).bareLf).toBe(2);
    expect(decodeSplit(b('a\r\nb\r\n.\r\n'), []).bareLf).toBe(0);
  });

  it('gives the same result for every split point of the fixed cases', () => {
    for (const [wire] of cases) {
      const whole = decodeSplit(b(wire), []);
      for (let cut = 0; cut <= wire.length; cut++) expect(decodeSplit(b(wire), [cut])).toEqual(whole);
      // Byte by byte.
      expect(decodeSplit(b(wire), [...Array(wire.length).keys()])).toEqual(whole);
    }
  });

  it('any split of random content gives the same result as the whole (property)', () => {
    const alphabet = fc.constantFrom('.', '\r', '\n', 'a', ' ', '\r\n', '\r\n.', '\n.', '.\r\n', '\r\n.\r\n', 'X');
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 8 }), (tokens, cuts) => {
        const wire = b(tokens.join(''));
        expect(decodeSplit(wire, cuts)).toEqual(decodeSplit(wire, []));
      }),
      { numRuns: 2000 },
    );
  });

  it('bytes after the end are handed back untouched, and later pushes go to rest', () => {
    const dec = new DotDecoder();
    const r = dec.push(b('m\r\n.\r\nQUIT\r\n'));
    expect(r.done).toBe(true);
    expect(s(r.rest)).toBe('QUIT\r\n');
    expect(s(dec.push(b('NOOP\r\n')).rest)).toBe('NOOP\r\n');
  });
});

describe('DotEncoder', () => {
  it('stuffs lines that start with a dot and terminates', () => {
    expect(s(dotStuff(b('.a\r\nb\r\n..\r\n')))).toBe('..a\r\nb\r\n...\r\n.\r\n');
    expect(s(dotStuff(b('')))).toBe('.\r\n');
    expect(s(dotStuff(b('no final crlf')))).toBe('no final crlf\r\n.\r\n');
    // A "." after a bare LF is a line start for the backend too.
    expect(s(dotStuff(b('x\n.y')))).toBe('x\n..y\r\n.\r\n');
  });

  it('streams: the same bytes for any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('.', '\r\n', 'a', '..', '\r', '\n'), { maxLength: 50 }), fc.array(fc.nat(), { maxLength: 6 }), (tokens, cuts) => {
        const msg = b(tokens.join(''));
        const points = [...new Set(cuts.map((c) => c % (msg.length + 1)))].sort((x, y) => x - y);
        const enc = new DotEncoder();
        const out: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, msg.length]) {
          out.push(...enc.push(msg.subarray(prev, p)));
          prev = p;
        }
        out.push(enc.end());
        expect(s(Buffer.concat(out))).toBe(s(dotStuff(msg)));
      }),
      { numRuns: 1000 },
    );
  });

  it('decode(encode(m)) = m for CRLF messages (property)', () => {
    const line = fc.array(fc.constantFrom('.', 'a', ' ', '\r', 'é'), { maxLength: 12 }).map((cs) => cs.join('').replace(/\r$/, ''));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
        const msg = b(lines.map((l) => `${l}\r\n`).join(''));
        const back = dotUnstuff(dotStuff(msg));
        expect(back).not.toBeNull();
        expect(s(back?.message ?? Buffer.alloc(0))).toBe(s(msg));
        expect(back?.rest.length).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });
});
