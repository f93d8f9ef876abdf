import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommand, POP3_MAX_AUTH_LINE_LENGTH, Pop3LineReader, splitArgs, type LineEvent } from '../../../src/pop3/wire.js';
import { MAX_SASL_RESPONSE_BYTES } from '../../../src/sasl/index.js';

function lines(reader: Pop3LineReader): (string | 'too-long')[] {
  const out: (string | 'too-long')[] = [];
  for (let ev: LineEvent | null = reader.next(); ev !== null; ev = reader.next()) {
    if (ev.kind === 'too-long') {
      out.push('too-long');
      break;
    }
    out.push(ev.line.toString('latin1'));
  }
  return out;
}

function readAll(input: string, chunks: number[], max = 100): (string | 'too-long')[] {
  const r = new Pop3LineReader(max);
  const buf = Buffer.from(input, 'latin1');
  const out: (string | 'too-long')[] = [];
  let at = 0;
  for (const size of [...chunks, buf.length]) {
    if (at >= buf.length) break;
    r.push(buf.subarray(at, at + size));
    at += size;
    out.push(...lines(r));
    if (out.at(-1) === 'too-long') break;
  }
  return out;
}

describe('Pop3LineReader', () => {
  it.each([
    ['CRLF', 'USER a\r\nPASS b\r\n', ['USER a', 'PASS b']],
    ['bare LF (as Dovecot accepts)', 'USER a\nPASS b\n', ['USER a', 'PASS b']],
    ['empty line', '\r\n', ['']],
    ['a CR inside a line is kept', 'PASS a\rb\r\n', ['PASS a\rb']],
    ['8-bit bytes are kept', 'PASS p\xe4ss\r\n', ['PASS p\xe4ss']],
    ['incomplete last line waits', 'CAPA\r\nUSE', ['CAPA']],
  ])('%s', (_name, input, expected) => {
    expect(readAll(input, [])).toEqual(expected);
  });

  it('gives the same lines whole, byte by byte and at random split points', () => {
    const input = 'CAPA\r\nUSER alice\r\nPASS pw with spaces\r\nAUTH PLAIN AGFsaWNlAHB3\r\n*\r\nQUIT\r\n';
    const whole = readAll(input, []);
    expect(readAll(input, Array<number>(input.length).fill(1))).toEqual(whole);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 20 }), { maxLength: 40 }), (splits) => {
        expect(readAll(input, splits)).toEqual(whole);
      }),
    );
  });

  it('a line of exactly the limit passes; one byte more is too long', () => {
    expect(readAll(`${'x'.repeat(100)}\r\n`, [])).toEqual(['x'.repeat(100)]);
    expect(readAll(`${'x'.repeat(101)}\r\n`, [])).toEqual(['too-long']);
  });

  it('an endless line is refused once past the limit, without waiting for its end', () => {
    const r = new Pop3LineReader(100);
    r.push(Buffer.from('x'.repeat(101)));
    expect(r.next()).toBeNull();
    r.push(Buffer.from('y'));
    expect(r.next()).toEqual({ kind: 'too-long' });
  });

  it('drain() hands over what was not read as lines', () => {
    const r = new Pop3LineReader(100);
    r.push(Buffer.from('STLS\r\nUSER injected\r\nPA'));
    expect(lines(r).slice(0, 1)).toEqual(['STLS']);
    const r2 = new Pop3LineReader(100);
    r2.push(Buffer.from('STLS\r\nUSER injected\r\n'));
    const ev = r2.next();
    expect(ev?.kind === 'line' && ev.line.toString()).toBe('STLS');
    expect(r2.drain().toString()).toBe('USER injected\r\n');
    expect(r2.next()).toBeNull();
    expect(r2.buffered).toBe(0);
  });

  it('the AUTH line limit fits a maximal SASL response in base64', () => {
    const ir = Buffer.alloc(MAX_SASL_RESPONSE_BYTES, 0x61).toString('base64');
    expect(`AUTH XOAUTH2-LONGER-NAME ${ir}`.length).toBeLessThanOrEqual(POP3_MAX_AUTH_LINE_LENGTH);
  });
});

describe('parseCommand', () => {
  it.each([
    ['user alice', 'USER', 'alice'],
    ['PASS  two  spaces ', 'PASS', ' two  spaces '],
    ['CAPA', 'CAPA', undefined],
    ['STLS ', 'STLS', ''],
    ['', '', undefined],
  ])('%j', (line, name, args) => {
    const cmd = parseCommand(Buffer.from(line));
    expect(cmd.name).toBe(name);
    expect(cmd.args?.toString()).toBe(args);
  });

  it('a huge keyword is cut, never copied whole', () => {
    expect(parseCommand(Buffer.from('X'.repeat(5000))).name.length).toBeLessThanOrEqual(33);
  });

  it('splitArgs drops empty pieces', () => {
    expect(splitArgs(Buffer.from('PLAIN  AGE='))).toEqual(['PLAIN', 'AGE=']);
    expect(splitArgs(undefined)).toEqual([]);
  });
});
