import { expect, test } from 'vitest';
import { asciiUpper } from '../../../src/wire/ascii.js';

test('asciiUpper is toUpperCase, and returns an upper-case ASCII word itself', () => {
  for (const s of ['', 'OK', 'CAPABILITY', 'IMAP4rev1', 'login', 'Auth=Plain', 'x-1_2', 'straße', 'écrit', 'ÿ', '\u0131', 'A\u00e9', 'NIL']) {
    expect(asciiUpper(s)).toBe(s.toUpperCase());
  }
  const word = ['CAPA', 'BILITY'].join('');
  expect(asciiUpper(word)).toBe(word);
});
