/**
 * TLS settings that only work together are refused at load with the setting named; the passdb
 * field ssl_server_name is parsed into the proxy target; the ticket secret handed from the
 * cluster primary is read once and removed from the environment.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { parseLoginFields } from '../../../src/passdb/fields.js';
import { makeTempDir } from '../../support/tmp.js';

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('portier-tls-config-');
  writeFileSync(join(dir, 'users'), '');
  writeFileSync(join(dir, 'c.pem'), 'x');
});

function problems(text: string): string[] {
  try {
    parseConfig(`protocols: imap\npassdb:\n  - driver: passwd-file\n    args: ${join(dir, 'users')}\n${text}`, join(dir, 'portier.yaml'));
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('TLS settings checked together', () => {
  test('ssl = no with an explicitly enabled implicit-TLS listener is refused; imaps at port 0 or left out is fine', () => {
    expect(problems('ssl: no\nservice:\n  imap-login:\n    inet_listener:\n      imaps: { port: 993 }\n').join('\n')).toMatch(
      /service\.imap-login\.inet_listener\.imaps: ssl = no switches TLS off/,
    );
    expect(problems('ssl: no\nservice:\n  imap-login:\n    inet_listener:\n      own: { port: 1993, ssl: yes }\n').join('\n')).toMatch(/inet_listener\.own: ssl = no/);
    expect(problems('ssl: no\nservice:\n  imap-login:\n    inet_listener:\n      imaps: { port: 0 }\n')).toEqual([]);
    expect(problems('ssl: no\n')).toEqual([]);
  });

  test('ssl = yes or required needs ssl_cert', () => {
    expect(problems('ssl: required\n').join('\n')).toMatch(/ssl_cert: required when ssl = required/);
  });

  test('client certificate settings need each other', () => {
    const c = `ssl_cert: ${join(dir, 'c.pem')}\nssl_key: ${join(dir, 'c.pem')}\n`;
    expect(problems(`${c}ssl_verify_client_cert: yes\n`).join('\n')).toMatch(/ssl_verify_client_cert: needs ssl_ca/);
    expect(problems(`${c}auth_ssl_require_client_cert: yes\n`).join('\n')).toMatch(/auth_ssl_require_client_cert: needs ssl_verify_client_cert/);
    expect(problems(`${c}auth_ssl_username_from_cert: yes\n`).join('\n')).toMatch(/auth_ssl_username_from_cert: needs ssl_verify_client_cert/);
    expect(problems(`${c}ssl_ca: ${join(dir, 'c.pem')}\nssl_verify_client_cert: yes\nauth_ssl_require_client_cert: yes\n`)).toEqual([]);
  });

  test('alternative certificates come in pairs and beside a certificate; per-service pairs too; files must be readable', () => {
    const c = `ssl_cert: ${join(dir, 'c.pem')}\nssl_key: ${join(dir, 'c.pem')}\n`;
    expect(problems(`${c}local_name:\n  a.example.org:\n    ssl_alt_cert: ${join(dir, 'c.pem')}\n`).join('\n')).toMatch(/local_name\.a\.example\.org: ssl_alt_cert and ssl_alt_key go together/);
    expect(problems(`${c}service:\n  imap-login:\n    ssl_cert: ${join(dir, 'c.pem')}\n`).join('\n')).toMatch(/service\.imap-login: ssl_cert and ssl_key go together/);
    expect(problems(`${c}ssl_ca: ${join(dir, 'missing.pem')}\n`).join('\n')).toMatch(/ssl_ca: cannot read/);
    expect(problems(`${c}service:\n  imap-login:\n    ssl_cert: missing.pem\n    ssl_key: missing.key\n`).join('\n')).toMatch(/service\.imap-login\.ssl_cert: cannot read/);
  });
});

describe('passdb ssl_server_name', () => {
  const parse = (f: Record<string, string>) => parseLoginFields(new Map(Object.entries({ proxy: 'y', host: '10.0.0.5', ssl: 'yes', ...f })), 'imap');

  test('a host name (kept lower-case) or an IP is taken; anything else is an invalid result', () => {
    const ok = parse({ ssl_server_name: 'IMAP.Example.org' });
    expect(ok.ok && ok.fields.proxy?.sslServerName).toBe('imap.example.org');
    const ip = parse({ ssl_server_name: '10.0.0.5' });
    expect(ip.ok && ip.fields.proxy?.sslServerName).toBe('10.0.0.5');
    const none = parse({});
    expect(none.ok && none.fields.proxy?.sslServerName).toBeUndefined();
    const bad = parse({ ssl_server_name: 'bad name/with space' });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.error).toMatch(/invalid ssl_server_name/);
  });
});

describe('ticket secret from the cluster primary', () => {
  test('a worker takes the secret from the environment once and removes it; keys match the primary’s', async () => {
    vi.resetModules();
    const secret = 'ab'.repeat(32);
    process.env['PORTIER_TLS_TICKET_SECRET'] = secret;
    const t = await import('../../../src/tls/tickets.js');
    const mine = t.ticketSecret(undefined);
    expect(mine.toString('hex')).toBe(secret);
    expect(process.env['PORTIER_TLS_TICKET_SECRET']).toBeUndefined();
    expect(t.ticketSecret(undefined)).toBe(mine);
    expect(t.ticketKeysFor(mine, 7).equals(t.ticketKeysFor(Buffer.from(secret, 'hex'), 7))).toBe(true);
  });

  test('the primary makes one secret for all its workers; without one a process makes its own', async () => {
    vi.resetModules();
    delete process.env['PORTIER_TLS_TICKET_SECRET'];
    const t = await import('../../../src/tls/tickets.js');
    t.shareTicketSecretWithWorkers();
    const shared = process.env['PORTIER_TLS_TICKET_SECRET'];
    expect(shared).toMatch(/^[0-9a-f]{64}$/);
    t.shareTicketSecretWithWorkers();
    expect(process.env['PORTIER_TLS_TICKET_SECRET']).toBe(shared);
    delete process.env['PORTIER_TLS_TICKET_SECRET'];
    vi.resetModules();
    const u = await import('../../../src/tls/tickets.js');
    expect(u.ticketSecret(undefined)).toHaveLength(32);
  });

  test('ssl_session_ticket_key_file must hold at least 32 bytes', async () => {
    const t = await import('../../../src/tls/tickets.js');
    const short = join(dir, 'short.key');
    writeFileSync(short, 'too short');
    expect(() => t.ticketSecret(short)).toThrow(/too short for a ticket secret/);
    const good = join(dir, 'good.key');
    writeFileSync(good, Buffer.alloc(48, 3));
    expect(t.ticketSecret(good)).toEqual(Buffer.alloc(48, 3));
  });
});
