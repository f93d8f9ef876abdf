import { expect, test } from 'vitest';
import { normalizeUser } from '../../../src/login/auth.js';

const DOVECOT_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@';

test('auth_username_chars: only the listed characters pass; auth_username_format applies after', () => {
  expect(normalizeUser('Alice@Example.COM', '%Lu', DOVECOT_CHARS)).toBe('alice@example.com');
  expect(normalizeUser('alice@example.com', '%n', DOVECOT_CHARS)).toBe('alice');
  expect(normalizeUser('alice+tag@example.com', '%Lu', DOVECOT_CHARS)).toBeNull();
  expect(normalizeUser('alice example', '%Lu', DOVECOT_CHARS)).toBeNull();
  expect(normalizeUser('ålice', '%Lu', DOVECOT_CHARS)).toBeNull();
  expect(normalizeUser('', '%Lu', DOVECOT_CHARS)).toBeNull();
  expect(normalizeUser('a'.repeat(256), '%Lu', DOVECOT_CHARS)).toBeNull();
});

test("auth_username_chars with a character class's own syntax (] \\ ^ -) means those characters, nothing more", () => {
  const chars = 'ab]\\^-';
  expect(normalizeUser('a]b\\^-', '%u', chars)).toBe('a]b\\^-');
  // A range a-b would not let c in either; a class broken by ] or ^ would.
  expect(normalizeUser('c', '%u', chars)).toBeNull();
  expect(normalizeUser('ab[', '%u', chars)).toBeNull();
  // Back to the usual set: the class is rebuilt for the new value.
  expect(normalizeUser('ab]', '%u', DOVECOT_CHARS)).toBeNull();
  // Non-BMP characters are one character each, not two halves.
  expect(normalizeUser('a😀', '%u', 'a😀')).toBe('a😀');
  expect(normalizeUser('a😁', '%u', 'a😀')).toBeNull();
});

test('without auth_username_chars, control characters are still refused', () => {
  expect(normalizeUser('alice\x00', '%u', '')).toBeNull();
  expect(normalizeUser('alice\x7f', '%u', '')).toBeNull();
  expect(normalizeUser('älice', '%u', '')).toBe('älice');
});

test('expanded templates are the same the second time (parsed once, kept)', () => {
  expect(normalizeUser('Bob@X.org', '%Ln', DOVECOT_CHARS)).toBe('bob');
  expect(normalizeUser('Carol@Y.org', '%Ln', DOVECOT_CHARS)).toBe('carol');
  expect(normalizeUser('Carol@Y.org', '%Ud', DOVECOT_CHARS)).toBe('Y.ORG');
});
