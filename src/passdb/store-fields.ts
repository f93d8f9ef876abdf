/**
 * Rows and documents from a store (SQL columns, Redis hash fields, JSON members) as passdb
 * fields, with Dovecot's conventions: NULL means absent, booleans are present-or-absent flags
 * ('Y' strings already are), and `password_noscheme` is a password that never has a prefix.
 */
import type { Fields } from './types.js';

/** The text of one value; undefined when the field is absent. */
export function fieldText(value: unknown): string | undefined {
  if (value === null || value === undefined || value === false) return undefined;
  if (value === true) return 'y';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

export function fieldsFromRecord(record: Readonly<Record<string, unknown>>, defaultScheme: string): Fields {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(record)) {
    const text = fieldText(value);
    if (text === undefined) continue;
    if (key === 'password_noscheme') {
      // Dovecot: a leading "{" belongs to the password, so pin the scheme explicitly.
      if (!out.has('password')) out.set('password', text.startsWith('{') ? `{${defaultScheme}}${text}` : text);
      continue;
    }
    out.set(key, text);
  }
  return out;
}
