/**
 * The small pure parts of src/tls: cipher strings, RFC 6125 name matching, user names from
 * certificate subjects, PEM bundles and CA directories, ticket key derivation, and the options
 * for TLS to a backend (which name is verified, when SNI is sent).
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_CIPHERS } from 'node:tls';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { usernameFromSubject } from '../../../src/tls/client-cert.js';
import { readCaDir, splitPem } from '../../../src/tls/files.js';
import { cipherString, nameMatches } from '../../../src/tls/store.js';
import { ticketEpoch, ticketKeysFor, TICKET_ROTATION_MS } from '../../../src/tls/tickets.js';
import { UpstreamTls } from '../../../src/tls/upstream.js';
import { makeTestCa, type TestCa } from '../../support/tlsca.js';
import { makeTempDir } from '../../support/tmp.js';

let dir: string;
let ca: TestCa;

beforeAll(async () => {
  dir = await makeTempDir('portier-tls-pieces-');
  ca = await makeTestCa(join(dir, 'ca'));
});

describe('cipher strings', () => {
  test('ssl_cipher_list replaces only the TLS 1.2 part, ssl_cipher_suites only the TLS 1.3 part', () => {
    const tls13 = DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_'));
    expect(tls13.length).toBeGreaterThan(0);
    const only12 = cipherString('ECDHE-RSA-AES256-GCM-SHA384', undefined).split(':');
    expect(only12[0]).toBe('ECDHE-RSA-AES256-GCM-SHA384');
    expect(only12.slice(1)).toEqual(tls13);
    const only13 = cipherString(undefined, 'TLS_AES_256_GCM_SHA384').split(':');
    expect(only13.at(-1)).toBe('TLS_AES_256_GCM_SHA384');
    expect(only13.some((c) => c.startsWith('TLS_') && c !== 'TLS_AES_256_GCM_SHA384')).toBe(false);
    expect(cipherString(undefined, undefined)).toBe(DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_')).concat(tls13).join(':'));
  });
});

describe('RFC 6125 wildcard names', () => {
  test.each([
    ['*.example.org', 'a.example.org', true],
    ['*.example.org', 'example.org', false],
    ['*.example.org', 'a.b.example.org', false],
    ['*.example.org', '.example.org', false],
    ['mail.example.org', 'mail.example.org', true],
    ['mail.example.org', 'x.mail.example.org', false],
  ])('%s vs %s: %s', (pattern, name, hit) => {
    expect(nameMatches(pattern, name)).toBe(hit);
  });
});

describe('user names from certificate subjects', () => {
  const subject = { O: 'portier test', CN: 'alice@example.org', UID: 'alice-uid', x500UniqueIdentifier: 'xu-1', OU: ['one', 'two'] };
  test('ssl_cert_username_field takes OpenSSL long or short names, any case; default commonName', () => {
    expect(usernameFromSubject(subject, 'commonName')).toBe('alice@example.org');
    expect(usernameFromSubject(subject, 'CN')).toBe('alice@example.org');
    expect(usernameFromSubject(subject, 'userId')).toBe('alice-uid');
    expect(usernameFromSubject(subject, 'x500UniqueIdentifier')).toBe('xu-1');
    expect(usernameFromSubject(subject, 'x500uniqueidentifier')).toBe('xu-1');
    expect(usernameFromSubject(subject, 'organizationalUnitName')).toBe('one');
    expect(usernameFromSubject(subject, 'emailAddress')).toBeUndefined();
  });
  test('control characters, empty and overlong values are no user name', () => {
    expect(usernameFromSubject({ CN: 'alice\u0000admin' }, 'CN')).toBeUndefined();
    expect(usernameFromSubject({ CN: 'alice\r\nx' }, 'CN')).toBeUndefined();
    expect(usernameFromSubject({ CN: '' }, 'CN')).toBeUndefined();
    expect(usernameFromSubject({ CN: 'a'.repeat(256) }, 'CN')).toBeUndefined();
  });
});

describe('PEM bundles', () => {
  test('certificates and CRLs are told apart; keys are ignored', async () => {
    const leaf = await ca.issue('bundle.test');
    const crl = '-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n';
    const text = readFileSync(leaf.certFile, 'utf8') + crl + readFileSync(leaf.keyFile, 'utf8') + readFileSync(ca.caFile, 'utf8');
    const b = splitPem(text);
    expect(b.certs).toHaveLength(2);
    expect(b.crls).toEqual([crl]);
  });

  test('a CA directory: every file once (c_rehash links too), dot files and subdirectories skipped', () => {
    const d = join(dir, 'cadir');
    mkdirSync(join(d, 'sub'), { recursive: true });
    writeFileSync(join(d, 'root.pem'), readFileSync(ca.caFile));
    symlinkSync(join(d, 'root.pem'), join(d, 'abcd1234.0'));
    writeFileSync(join(d, '.hidden.pem'), 'junk');
    writeFileSync(join(d, 'README'), 'not a certificate');
    expect(readCaDir(d).certs).toEqual([readFileSync(ca.caFile, 'utf8').trim() + '\n']);
    expect(() => readCaDir(join(d, 'sub'))).toThrow(/no PEM certificate/);
  });
});

describe('session ticket keys', () => {
  test('the same secret gives every process the same keys for a period, and new ones for the next', () => {
    const secret = Buffer.alloc(32, 7);
    const now = Date.now();
    const e = ticketEpoch(now);
    expect(ticketEpoch(now + TICKET_ROTATION_MS)).toBe(e + 1);
    const k = ticketKeysFor(secret, e);
    expect(k).toHaveLength(48);
    expect(ticketKeysFor(Buffer.alloc(32, 7), e).equals(k)).toBe(true);
    expect(ticketKeysFor(secret, e + 1).equals(k)).toBe(false);
    expect(ticketKeysFor(Buffer.alloc(32, 8), e).equals(k)).toBe(false);
  });
});

describe('options for TLS to a backend', () => {
  function upstream(extra = ''): UpstreamTls {
    writeFileSync(join(dir, 'users'), '');
    const loaded = parseConfig(`ssl: no\nprotocols: imap\npassdb:\n  - driver: passwd-file\n    args: ${join(dir, 'users')}\n${extra}`, join(dir, 'p.yaml'));
    return new UpstreamTls(loaded.config);
  }

  test('host name: verified and sent as SNI; IP: verified against IP SANs, no SNI (RFC 6066 §3)', () => {
    const u = upstream(`ssl_client_ca_file: ${ca.caFile}\n`);
    expect(u.options({ host: 'imap.backend.test', anyCert: false })).toMatchObject({ host: 'imap.backend.test', servername: 'imap.backend.test', rejectUnauthorized: true });
    const ip = u.options({ host: '10.0.0.7', anyCert: false });
    expect(ip).toMatchObject({ host: '10.0.0.7', rejectUnauthorized: true });
    expect(ip.servername).toBeUndefined();
    expect(u.options({ host: '10.0.0.7', sslServerName: 'imap.backend.test', anyCert: false })).toMatchObject({ host: 'imap.backend.test', servername: 'imap.backend.test' });
    expect(u.options({ host: '::1', anyCert: true })).toMatchObject({ host: '::1', rejectUnauthorized: false });
  });

  test('the context is rebuilt only when its files or settings change', async () => {
    const u = upstream(`ssl_client_ca_file: ${ca.caFile}\n`);
    const loaded = parseConfig(`ssl: no\nprotocols: imap\nssl_client_ca_file: ${ca.caFile}\npassdb:\n  - driver: passwd-file\n    args: ${join(dir, 'users')}\n`, join(dir, 'p.yaml'));
    expect(u.rebuilt(loaded.config)).toBe(u);
    const client = await ca.issue('portier-client');
    const withCert = parseConfig(
      `ssl: no\nprotocols: imap\nssl_client_ca_file: ${ca.caFile}\nssl_client_cert: ${client.certFile}\nssl_client_key: ${client.keyFile}\npassdb:\n  - driver: passwd-file\n    args: ${join(dir, 'users')}\n`,
      join(dir, 'p.yaml'),
    );
    expect(u.rebuilt(withCert.config)).not.toBe(u);
  });
});
