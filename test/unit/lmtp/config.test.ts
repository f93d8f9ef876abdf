/**
 * The LMTP settings: defaults, sizes, lmtp_proxy_idle_connections, a relative mail_temp_dir taken from the configuration
 * file's directory, and a mail_temp_dir that cannot be used refused at start (with lmtp on).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { refusedConfig } from '../../support/config-problems.js';

const dir = mkdtempSync(join(tmpdir(), 'portier-lmtp-config-'));
const users = join(dir, 'users');
writeFileSync(users, 'alice@a.example:::::::proxy=y host=127.0.0.2\n');
const base = `ssl: no\nprotocols: lmtp\npassdb:\n  - driver: passwd-file\n    args: scheme=PLAIN ${users}\n`;

const refused = (text: string): string[] => refusedConfig(text, join(dir, 'portier.yaml'));

describe('LMTP settings', () => {
  test('defaults: recipient_delimiter +, lmtp_max_mail_size 64M, mail_temp_dir /tmp, listener on 24', () => {
    const c = parseConfig(base, join(dir, 'p.yaml'));
    expect(c.config.recipient_delimiter).toBe('+');
    expect(c.config.lmtp_max_mail_size).toBe(64 * 1024 * 1024);
    expect(c.config.mail_temp_dir).toBe('/tmp');
    expect(c.config.lmtp_proxy_idle_connections).toBe(2);
    expect(c.listeners.map((l) => `${l.name}:${l.port}`)).toEqual(['lmtp:24']);
  });

  test('lmtp_proxy_idle_connections: 0 turns it off; negative, fractional or huge values are refused', () => {
    expect(parseConfig(`${base}lmtp_proxy_idle_connections: 0\n`, join(dir, 'p.yaml')).config.lmtp_proxy_idle_connections).toBe(0);
    for (const bad of ['-1', '2.5', '1001', 'many']) expect(refused(`${base}lmtp_proxy_idle_connections: ${bad}\n`)[0], bad).toMatch(/lmtp_proxy_idle_connections: /);
  });

  test('sizes and a relative mail_temp_dir (relative to the configuration file)', () => {
    mkdirSync(join(dir, 'spool'), { recursive: true });
    const c = parseConfig(`${base}lmtp_max_mail_size: 10M\nmail_temp_dir: spool\nrecipient_delimiter: "+-"\n`, join(dir, 'p.yaml'));
    expect(c.config.lmtp_max_mail_size).toBe(10 * 1024 * 1024);
    expect(c.config.mail_temp_dir).toBe(join(dir, 'spool'));
    expect(c.config.recipient_delimiter).toBe('+-');
  });

  test('refused: a missing mail_temp_dir, a zero or malformed size', () => {
    expect(refused(`${base}mail_temp_dir: ${join(dir, 'nope')}\n`)).toEqual([`${join(dir, 'portier.yaml')}:6: mail_temp_dir: cannot write to ${join(dir, 'nope')}`]);
    expect(refused(`${base}lmtp_max_mail_size: 0\n`)[0]).toMatch(/lmtp_max_mail_size: must be more than 0/);
    expect(refused(`${base}lmtp_max_mail_size: lots\n`)[0]).toMatch(/lmtp_max_mail_size: expected a size/);
    // Without lmtp the directory is not needed.
    expect(() => parseConfig(`${base.replace('protocols: lmtp', 'protocols: imap')}mail_temp_dir: ${join(dir, 'nope')}\n`, join(dir, 'p.yaml'))).not.toThrow();
  });
});
