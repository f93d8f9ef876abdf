import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { refusedConfig } from '../../support/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'portier-config-'));
const users = join(dir, 'users');
writeFileSync(users, 'alice:{PLAIN}x\n');

const problems = (text: string): string[] => refusedConfig(text, join(dir, 'portier.yaml'));

const minimal = `ssl: no\npassdb:\n  - driver: passwd-file\n    args: scheme=PLAIN ${users}\n`;

describe('config loading', () => {
  test('a minimal config gets Dovecot defaults and default listeners (ssl: no leaves out the implicit-TLS ones)', () => {
    const c = parseConfig(minimal, join(dir, 'p.yaml'));
    expect(c.config.login_proxy_timeout).toBe(30_000);
    expect(c.config.login_timeout).toBe(180_000);
    expect(c.config.disable_plaintext_auth).toBe(true);
    expect(c.config.auth_username_format).toBe('%Lu');
    expect(c.listeners.map((l) => `${l.name}:${l.port}:${l.ssl}`)).toEqual([
      'imap:143:false', 'pop3:110:false', 'lmtp:24:false',
    ]);
    const p = c.config.passdb[0];
    expect(p?.driver === 'passwd-file' && p.path === users && p.scheme === 'PLAIN').toBe(true);
    expect(Object.isFrozen(c.config)).toBe(true);
  });

  test('durations, sizes and yes/no take Dovecot forms', () => {
    const c = parseConfig(`${minimal}login_timeout: 3 mins\nlogin_proxy_timeout: 15\nlogin_max_line_length: 16k\nimap_id_retain: yes\n`, 'p.yaml');
    expect(c.config.login_timeout).toBe(180_000);
    expect(c.config.login_proxy_timeout).toBe(15_000);
    expect(c.config.login_max_line_length).toBe(16384);
    expect(c.config.imap_id_retain).toBe(true);
  });

  test('port 0 switches a default listener off; listeners merge by name', () => {
    const c = parseConfig(`${minimal}protocols: imap\nservice:\n  imap-login:\n    inet_listener:\n      imap: { port: 10143, address: 127.0.0.1 }\n      imaps: { port: 0 }\n`, 'p.yaml');
    expect(c.listeners).toHaveLength(1);
    expect(c.listeners[0]).toMatchObject({ name: 'imap', port: 10143, addresses: ['127.0.0.1'], protocol: 'imap', ssl: false });
  });

  test('unknown keys are refused with file, line and key path', () => {
    const p = problems(`${minimal}login_timout: 5s\nservice:\n  imap-login:\n    inet_listener:\n      imap: { port: 1, bogus: 1 }\n`);
    expect(p).toContain(`${join(dir, 'portier.yaml')}:5: login_timout: unknown setting`);
    expect(p.some((l) => /:9: service\.imap-login\.inet_listener\.imap\.bogus: unknown setting$/.test(l))).toBe(true);
  });

  test('wrong types and bad values name the key path and line', () => {
    const p = problems(`${minimal}login_timeout: soon\nlogin_max_bad_commands: many\nssl_min_protocol: TLSv1.0\nlogin_trusted_networks: 10.0.0.0/33 1.2.3.4\n`);
    expect(p.find((l) => l.includes('login_timeout'))).toMatch(/:5: login_timeout: expected a duration like 30s, 5m or 1h, got "soon"$/);
    expect(p.find((l) => l.includes('login_max_bad_commands'))).toMatch(/:6: login_max_bad_commands: /);
    expect(p.find((l) => l.includes('ssl_min_protocol'))).toMatch(/:7: ssl_min_protocol: /);
    expect(p.find((l) => l.includes('login_trusted_networks'))).toMatch(/:8: login_trusted_networks: "10\.0\.0\.0\/33" has an invalid prefix length/);
  });

  test('an unknown passdb driver is refused with its path', () => {
    const p = problems(`ssl: no\npassdb:\n  - driver: ldap-ish\n`);
    expect(p.join('\n')).toMatch(/:3: passdb\.0\.driver: unknown passdb driver/);
  });

  test('missing files are refused at start', () => {
    const p = problems(`ssl: yes\nssl_cert: ./nope.pem\nssl_key: ./nope.key\npassdb:\n  - driver: passwd-file\n    path: ./missing-users\n`);
    expect(p.some((l) => /:2: ssl_cert: cannot read .*nope\.pem$/.test(l))).toBe(true);
    expect(p.some((l) => /:6: passdb\.0\.path: cannot read .*missing-users$/.test(l))).toBe(true);
  });

  test('TLS without a certificate is refused', () => {
    const p = problems(`passdb:\n  - driver: static\n    args: proxy=y host=127.0.0.1 nopassword=y\n`);
    expect(p.join('\n')).toMatch(/ssl_cert: required when ssl = yes/);
  });

  test('YAML syntax errors carry the line', () => {
    const p = problems(`ssl: no\npassdb: [\n  - x\nfoo: : :\n`);
    expect(p[0]).toMatch(/portier\.yaml:\d+: YAML syntax: /);
  });

  test('a file that cannot be read is one clear message', () => {
    expect(() => loadConfig(join(dir, 'absent.yaml'))).toThrow(/absent\.yaml: cannot read the configuration file/);
  });
});
