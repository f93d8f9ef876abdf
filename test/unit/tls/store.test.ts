/**
 * TlsStore without sockets: which context a server name gets (exact, wildcard, listener,
 * protocol, default; strict SNI), start-up strictness, and reloads that keep what fails to load.
 * Real certificates from the test CA; handshakes are in test/e2e/tls-client.test.ts.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseConfig, type LoadedConfig } from '../../../src/config/load.js';
import { PortierError } from '../../../src/errors.js';
import { createLogger } from '../../../src/telemetry/log.js';
import { TlsStore } from '../../../src/tls/store.js';
import { makeTestCa, type IssuedCert, type TestCa } from '../../support/tlsca.js';
import { makeTempDir } from '../../support/tmp.js';

let ca: TestCa;
let dir: string;
const certs: Record<string, IssuedCert> = {};

beforeAll(async () => {
  dir = await makeTempDir('portier-tls-unit-');
  ca = await makeTestCa(join(dir, 'ca'));
  certs['default'] = await ca.issue('default.test', { sans: ['default.test', '*.default.test'] });
  certs['exact'] = await ca.issue('mail.example.org');
  certs['renewed'] = await ca.issue('mail.example.org');
  certs['wild'] = await ca.issue('*.example.net');
  certs['listener'] = await ca.issue('imaps.listener.test');
  certs['service'] = await ca.issue('pop3.service.test');
  certs['locked'] = await ca.issue('locked.test', { keyPassword: 'sesame-41' });
  writeFileSync(join(dir, 'users'), '');
  // Files the reload tests overwrite.
  copyFileSync(certs['exact'].certFile, join(dir, 'exact.pem'));
  copyFileSync(certs['exact'].keyFile, join(dir, 'exact.key'));
});

function load(extra = '', exact = { cert: join(dir, 'exact.pem'), key: join(dir, 'exact.key') }): LoadedConfig {
  const c = certs;
  const text = `
protocols: imap pop3
ssl: yes
ssl_cert: ${c['default']?.certFile}
ssl_key: ${c['default']?.keyFile}
ssl_watch_files: no
local_name:
  mail.example.org imap.example.org:
    ssl_cert: ${exact.cert}
    ssl_key: ${exact.key}
  "*.example.net":
    ssl_cert: ${c['wild']?.certFile}
    ssl_key: ${c['wild']?.keyFile}
service:
  imap-login:
    inet_listener:
      imaps: { port: 993, ssl_cert: ${c['listener']?.certFile}, ssl_key: ${c['listener']?.keyFile} }
  pop3-login:
    ssl_cert: ${c['service']?.certFile}
    ssl_key: ${c['service']?.keyFile}
passdb:
  - driver: passwd-file
    args: ${join(dir, 'users')}
${extra}`;
  return parseConfig(text, join(dir, 'portier.yaml'));
}

function logSink(): { log: ReturnType<typeof createLogger>; lines: () => { level: string; msg: string; certificate?: string; err?: string }[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    log: createLogger({ level: 'info', instance: 'test', destination }),
    lines: () => chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { level: string; msg: string }),
  };
}

function listener(loaded: LoadedConfig, name: string) {
  const l = loaded.listeners.find((x) => x.name === name);
  if (l === undefined) throw new Error(`no listener ${name}`);
  return l;
}

describe('choosing a certificate by server name', () => {
  test('exact names (any of a block, any case, trailing dot), one-label wildcards, else the default', () => {
    const loaded = load();
    const s = new TlsStore(loaded.config, loaded.listeners);
    const def = s.contextFor(undefined);
    const exact = s.contextFor('mail.example.org');
    const wild = s.contextFor('a.example.net');
    expect(def).toBeDefined();
    expect(new Set([def, exact, wild]).size).toBe(3);
    expect(s.contextFor('IMAP.Example.Org.')).toBe(exact);
    expect(s.contextFor('b.example.net')).toBe(wild);
    // RFC 6125: `*` is one whole label, never several, never none.
    expect(s.contextFor('a.b.example.net')).toBe(def);
    expect(s.contextFor('example.net')).toBe(def);
    expect(s.contextFor('unknown.test')).toBe(def);
  });

  test('a listener certificate, then the protocol (service) one, stand in for the default; SNI still wins', () => {
    const loaded = load();
    const s = new TlsStore(loaded.config, loaded.listeners);
    const def = s.contextFor(undefined);
    const imaps = s.contextFor(undefined, listener(loaded, 'imaps'));
    const imap = s.contextFor(undefined, listener(loaded, 'imap'));
    const pop3s = s.contextFor(undefined, listener(loaded, 'pop3s'));
    const pop3 = s.contextFor(undefined, listener(loaded, 'pop3'));
    expect(imap).toBe(def);
    expect(imaps).not.toBe(def);
    expect(pop3s).not.toBe(def);
    expect(pop3).toBe(pop3s);
    expect(pop3s).not.toBe(imaps);
    expect(s.contextFor('mail.example.org', listener(loaded, 'imaps'))).toBe(s.contextFor('mail.example.org'));
    expect(s.contextFor('other.test', listener(loaded, 'imaps'))).toBe(imaps);
  });

  test('strict SNI: names no certificate is for get nothing; names in a certificate (or none at all) are served', () => {
    const loaded = load('ssl_sni_strict: yes\n');
    const s = new TlsStore(loaded.config, loaded.listeners);
    expect(s.contextFor('unknown.test')).toBeUndefined();
    expect(s.contextFor('a.b.example.net')).toBeUndefined();
    expect(s.contextFor('mail.example.org')).toBeDefined();
    expect(s.contextFor('default.test')).toBe(s.contextFor(undefined));
    expect(s.contextFor('x.default.test')).toBe(s.contextFor(undefined));
    expect(s.contextFor(undefined)).toBeDefined();
    // The listener's certificate names count on that listener only.
    expect(s.contextFor('imaps.listener.test', listener(loaded, 'imaps'))).toBeDefined();
    expect(s.contextFor('imaps.listener.test', listener(loaded, 'imap'))).toBeUndefined();
  });
});

describe('loading', () => {
  test('a password-protected key loads with ssl_key_password; a wrong one fails start-up without showing it', () => {
    const locked = certs['locked'];
    if (locked === undefined) throw new Error('setup');
    const ok = load(`ssl_key_password: sesame-41\n`, { cert: locked.certFile, key: locked.keyFile });
    expect(new TlsStore(ok.config, ok.listeners).contextFor('mail.example.org')).toBeDefined();
    const bad = load(`ssl_key_password: wrong-pw-77\n`, { cert: locked.certFile, key: locked.keyFile });
    let err: unknown;
    try {
      new TlsStore(bad.config, bad.listeners);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PortierError);
    expect((err as PortierError).message).toMatch(/^local_name mail\.example\.org imap\.example\.org: /);
    expect((err as PortierError).message).not.toMatch(/wrong-pw-77/);
  });

  test('a certificate that does not match its key fails start-up', () => {
    const other = certs['wild'];
    if (other === undefined) throw new Error('setup');
    const loaded = load('', { cert: other.certFile, key: join(dir, 'exact.key') });
    expect(() => new TlsStore(loaded.config, loaded.listeners)).toThrow(/local_name mail\.example\.org/);
  });
});

describe('reloading', () => {
  test('unchanged files keep their contexts; a bad new file keeps the old one (logged once); a fixed file is taken', () => {
    const exactPem = join(dir, 'exact.pem');
    const loaded = load();
    const sink = logSink();
    const s = new TlsStore(loaded.config, loaded.listeners, sink.log);
    const before = s.contextFor('mail.example.org');
    const def = s.contextFor(undefined);
    expect(s.reload().changed).toEqual([]);
    expect(s.contextFor('mail.example.org')).toBe(before);

    writeFileSync(exactPem, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
    const bad = s.reload();
    expect(bad.failed.map((f) => f.id)).toEqual(['local_name mail.example.org imap.example.org']);
    expect(s.contextFor('mail.example.org')).toBe(before);
    expect(s.contextFor(undefined)).toBe(def);
    s.reload();
    const errors = sink.lines().filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/previous one stays in service/);
    expect(errors[0]?.certificate).toBe('local_name mail.example.org imap.example.org');

    // A renewal: another certificate for the same names, cert and key both replaced.
    copyFileSync(certs['renewed']?.certFile ?? '', exactPem);
    copyFileSync(certs['renewed']?.keyFile ?? '', join(dir, 'exact.key'));
    const fixed = s.reload();
    expect(fixed.failed).toEqual([]);
    expect(fixed.changed).toEqual(['local_name mail.example.org imap.example.org']);
    const after = s.contextFor('mail.example.org');
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
    expect(s.contextFor(undefined)).toBe(def);
    copyFileSync(certs['exact']?.certFile ?? '', exactPem);
    copyFileSync(certs['exact']?.keyFile ?? '', join(dir, 'exact.key'));
    expect(s.reload().changed).toEqual(['local_name mail.example.org imap.example.org']);
  });

  test('a new local_name whose files are bad is left out (its names get the default) and logged', () => {
    const loaded = load();
    const s = new TlsStore(loaded.config, loaded.listeners);
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, 'garbage\n');
    const withNew = parseConfig(
      `protocols: imap\nssl: yes\nssl_cert: ${certs['default']?.certFile}\nssl_key: ${certs['default']?.keyFile}\nssl_watch_files: no\n` +
        `local_name:\n  new.example.com:\n    ssl_cert: ${broken}\n    ssl_key: ${join(dir, 'exact.key')}\n` +
        `passdb:\n  - driver: passwd-file\n    args: ${join(dir, 'users')}\n`,
      join(dir, 'p2.yaml'),
    );
    const report = s.reload(withNew.config, withNew.listeners);
    expect(report.failed.map((f) => f.id)).toEqual(['local_name new.example.com']);
    expect(s.contextFor('new.example.com')).toBe(s.contextFor(undefined));
    expect(s.contextFor('mail.example.org')).toBe(s.contextFor(undefined));
  });
});
