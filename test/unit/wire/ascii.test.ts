import { expect, test } from 'vitest';
import { asciiUpper, isNil } from '../../../src/wire/ascii.js';

test('asciiUpper is toUpperCase, and returns an upper-case ASCII word itself', () => {
  for (const s of ['', 'OK', 'CAPABILITY', 'IMAP4rev1', 'login', 'Auth=Plain', 'x-1_2', 'straße', 'écrit', 'ÿ', '\u0131', 'A\u00e9', 'NIL']) {
    expect(asciiUpper(s)).toBe(s.toUpperCase());
  }
  const word = ['CAPA', 'BILITY'].join('');
  expect(asciiUpper(word)).toBe(word);
});

test('isNil matches nil in any case and nothing else', () => {
  for (const s of ['NIL', 'nil', 'Nil', 'nIL']) expect(isNil(s)).toBe(true);
  for (const s of ['', 'NI', 'NILL', 'NUL', 'N1L', 'ñil', 'NIL ', 'mil', '\u004e\u0049\u004c\u0000']) expect(isNil(s)).toBe(false);
  // Every string of three latin1 characters agrees with the definition it replaces.
  const chars = ['n', 'N', 'i', 'I', 'l', 'L', '.', 'N'.toLowerCase(), '\u00ee', '\u004e'];
  for (const a of chars) for (const b of chars) for (const c of chars) expect(isNil(a + b + c)).toBe((a + b + c).toUpperCase() === 'NIL');
});
