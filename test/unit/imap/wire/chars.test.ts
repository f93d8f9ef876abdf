import { expect, test } from 'vitest';
import { isNil, isNilBytes } from '../../../../src/imap/wire/chars.js';

test('isNil and isNilBytes match NIL in any case and nothing else', () => {
  for (const s of ['NIL', 'nil', 'Nil', 'nIL']) {
    expect(isNil(s)).toBe(true);
    expect(isNilBytes(Buffer.from(s, 'latin1'))).toBe(true);
  }
  for (const s of ['', 'NI', 'NILL', 'NUL', 'N1L', 'ñil', 'NIL ', 'mil', 'NIL\u0000']) {
    expect(isNil(s)).toBe(false);
    expect(isNilBytes(Buffer.from(s, 'latin1'))).toBe(false);
  }
  // Every three-character latin1 string agrees with the definition it replaces.
  const chars = ['n', 'N', 'i', 'I', 'l', 'L', '.', '\u00ee', '\u00ce', '\u004e'];
  for (const a of chars) for (const b of chars) for (const c of chars) {
    const s = a + b + c;
    expect(isNil(s)).toBe(s.toUpperCase() === 'NIL');
    expect(isNilBytes(Buffer.from(s, 'latin1'))).toBe(s.toUpperCase() === 'NIL');
  }
});
