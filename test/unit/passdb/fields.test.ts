import { describe, expect, test } from 'vitest';
import { flag, parseExtraFields, parseLoginFields } from '../../../src/passdb/fields.js';

const f = (text: string) => parseExtraFields(text);

describe('passdb fields', () => {
  test('Dovecot booleans: present means yes; explicit no is no', () => {
    expect(flag(f('proxy'), 'proxy')).toBe(true);
    expect(flag(f('proxy=y'), 'proxy')).toBe(true);
    expect(flag(f('proxy=Y'), 'proxy')).toBe(true);
    expect(flag(f('proxy=no'), 'proxy')).toBe(false);
    expect(flag(f('host=x'), 'proxy')).toBe(false);
  });

  test('a full proxy target', () => {
    const r = parseLoginFields(f('proxy=y host=mail.example.org hostip=10.0.0.7 port=1143 destuser=bob master=pmaster pass=s3cret ssl=any-cert proxy_timeout=5s proxy_nopipelining proxy_not_trusted source_ip=10.0.0.1 forward_x=1'), 'imap');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const p = r.fields.proxy;
    expect(p).toMatchObject({ mode: 'proxy', host: 'mail.example.org', hostip: '10.0.0.7', port: 1143, destuser: 'bob', master: 'pmaster', tls: 'ssl', anyCert: true, timeoutMs: 5000, nopipelining: true, notTrusted: true, sourceIp: '10.0.0.1' });
    expect(p?.pass?.toString()).toBe('s3cret');
    expect(p?.forward.get('x')).toBe('1');
  });

  test('proxy_timeout as bare seconds, starttls variants, proxy_maybe', () => {
    const r = parseLoginFields(f('proxy_maybe host=10.0.0.1 proxy_timeout=7 starttls=any-cert'), 'imap');
    expect(r.ok && r.fields.proxy).toMatchObject({ mode: 'proxy_maybe', timeoutMs: 7000, tls: 'starttls', anyCert: true });
  });

  test('host without proxy is a referral; nologin and reason are kept', () => {
    const r = parseLoginFields(f('host=imap.example.org nologin reason=moved'), 'imap');
    expect(r.ok && r.fields).toMatchObject({ referralHost: 'imap.example.org', nologin: true, reason: 'moved' });
    expect(r.ok && r.fields.proxy).toBeUndefined();
  });

  test('invalid values are errors, not guesses', () => {
    expect(parseLoginFields(f('proxy'), 'imap')).toEqual({ ok: false, error: 'proxy requested but the host field is missing' });
    expect(parseLoginFields(f('proxy host=h port=99999'), 'imap').ok).toBe(false);
    expect(parseLoginFields(f('proxy host=h ssl=maybe'), 'imap').ok).toBe(false);
    expect(parseLoginFields(f('proxy host=h ssl=yes starttls=yes'), 'imap').ok).toBe(false);
    expect(parseLoginFields(f('proxy host=h hostip=not-an-ip'), 'imap').ok).toBe(false);
    expect(parseLoginFields(f('proxy host=h proxy_timeout=soon'), 'imap').ok).toBe(false);
  });

  test('unknown fields are reported, not fatal', () => {
    const r = parseLoginFields(f('proxy host=h weird=1 userdb_quota=1G'), 'imap');
    expect(r.ok && r.fields.unknown).toEqual(['weird']);
  });
});
