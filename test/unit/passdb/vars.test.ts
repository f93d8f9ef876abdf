import { describe, expect, test } from 'vitest';
import { expandTemplate, parseTemplate, TemplateError } from '../../../src/passdb/vars.js';

describe('% variables', () => {
  const v = { user: 'Alice@Example.ORG', username: 'Alice', domain: 'Example.ORG', service: 'imap', rip: '192.0.2.1' };
  test('short and long forms with modifiers', () => {
    expect(expandTemplate('%u', v)).toBe('Alice@Example.ORG');
    expect(expandTemplate('%Lu', v)).toBe('alice@example.org');
    expect(expandTemplate('/etc/mail/%Ld/users', v)).toBe('/etc/mail/example.org/users');
    expect(expandTemplate('%n-%s-%r', v)).toBe('Alice-imap-192.0.2.1');
    expect(expandTemplate('%{user}|%U{service}|100%%', v)).toBe('Alice@Example.ORG|IMAP|100%');
  });
  test('unknown variables are refused at parse time', () => {
    expect(() => parseTemplate('%q')).toThrow(TemplateError);
    expect(() => parseTemplate('%{nope}')).toThrow(/unknown variable/);
    expect(() => parseTemplate('%{user')).toThrow(/unterminated/);
  });
  test('values are inserted verbatim, never re-expanded', () => {
    expect(expandTemplate('%u', { user: '%d%%{user}' })).toBe('%d%%{user}');
  });
});
