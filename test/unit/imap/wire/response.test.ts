import { expect, test } from 'vitest';
import { capabilitiesOf, hasCapabilities, parseCapabilities, parseResponse, untaggedName } from '../../../../src/imap/wire/response.js';

const r = (line: string) => parseResponse(Buffer.from(`${line}\r\n`, 'utf8'));

test('parseResponse: tag, status, code and text', () => {
  expect(r('* OK [CAPABILITY IMAP4rev1 ID] Dovecot ready.')).toMatchObject({ tag: '*', status: 'OK', code: { name: 'CAPABILITY', args: 'IMAP4rev1 ID' }, text: 'Dovecot ready.' });
  expect(r('L no [authenticationfailed]  Bad.')).toMatchObject({ tag: 'L', status: 'NO', code: { name: 'AUTHENTICATIONFAILED', args: '' }, text: ' Bad.' });
  expect(r('L OK [ALERT]')).toMatchObject({ status: 'OK', code: { name: 'ALERT' }, text: '' });
  expect(r('L BAD [broken')).toMatchObject({ status: 'BAD', text: '[broken' });
  expect(r('* 3 EXISTS')).toEqual({ kind: 'response', raw: Buffer.from('* 3 EXISTS\r\n'), tag: '*', text: '3 EXISTS' });
  expect(r('+ dGVzdA==')).toMatchObject({ tag: '+', text: 'dGVzdA==' });
});

test('untaggedName: the first word, or the word after a number', () => {
  expect(untaggedName(r('* CAPABILITY IMAP4rev1'))).toBe('CAPABILITY');
  expect(untaggedName(r('* id ("name" "x")'))).toBe('ID');
  expect(untaggedName(r('* 5 fetch (FLAGS ())'))).toBe('FETCH');
  expect(untaggedName(r('* 5 EXISTS'))).toBe('EXISTS');
  expect(untaggedName(r('* 5'))).toBe('');
  expect(untaggedName(r('* 5  X'))).toBe('');
  expect(untaggedName(r('* 5a X'))).toBe('5A');
  expect(untaggedName(r('* OK done'))).toBeUndefined();
  expect(untaggedName(r('L OK done'))).toBeUndefined();
});

test('hasCapabilities says what capabilitiesOf would find', () => {
  for (const line of ['* CAPABILITY IMAP4rev1 IDLE', 'L OK [CAPABILITY IMAP4rev1] Logged in', 'L OK Logged in', '* OK [ALERT] x', '* 1 EXISTS', '* ID NIL']) {
    expect(hasCapabilities(r(line))).toBe(capabilitiesOf(r(line)) !== undefined);
  }
});

test('parseCapabilities: upper-cased names, one shared set per text, correct past the kept few', () => {
  const a = parseCapabilities('IMAP4rev1 sasl-ir  AUTH=plain\tID');
  expect([...a]).toEqual(['IMAP4REV1', 'SASL-IR', 'AUTH=PLAIN', 'ID']);
  // The same text (another string object) gives the same set.
  expect(parseCapabilities(['IMAP4rev1 sasl-ir', ' AUTH=plain\tID'].join(' '))).toBe(a);
  // Texts of the same length that differ are not confused.
  expect([...parseCapabilities('IMAP4rev1 sasl-ir  AUTH=plain\tIX')]).toContain('IX');
  // More distinct lists than are kept: each still parses to its own names.
  for (let i = 0; i < 40; i++) expect(parseCapabilities(`IMAP4rev1 X-${i}`).has(`X-${i}`)).toBe(true);
  expect(parseCapabilities('IMAP4rev1 sasl-ir  AUTH=plain\tID').has('AUTH=PLAIN')).toBe(true);
});
