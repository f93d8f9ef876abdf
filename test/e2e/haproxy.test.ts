/**
 * PROXY protocol listeners: the real client address from a trusted load balancer reaches the
 * backend (the Dovecot backend logs it), untrusted senders are refused, a TLS-offload TLV
 * counts as encrypted, and a PROXY-or-direct listener cannot be spoofed by direct clients.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildProxyHeaderV1, buildProxyHeaderV2 } from '../../src/listen/proxy-protocol-build.js';
import { PP2_CLIENT } from '../../src/listen/proxy-protocol.js';
import { greeted } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const run = promisify(execFile);
const LB = '127.0.0.7';
let backend: DovecotBackend;
let px: RunningPortier;

beforeAll(async () => {
  backend = await startDovecot({ address: '127.0.0.2', users: [{ user: 'alice', password: 'pw' }], trustedNetworks: ['127.0.0.0/8'] });
  px = await startPortier(
    testConfig(['imap'], {
      settings: { disable_plaintext_auth: 'yes', haproxy_trusted_networks: LB, login_trusted_networks: LB, haproxy_timeout: '1s' },
      service: `service:
  imap-login:
    inet_listener:
      imap: { port: 0 }
      imaps: { port: 0 }
      lb: { port: {{port}}, haproxy: yes }
      mixed: { port: {{port}}, haproxy: yes, haproxy_optional: yes }
`,
    }),
    { users: `alice:{PLAIN}pw::::::proxy=y host=${backend.host} port=${backend.ports.imap}\n` },
  );
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

async function viaLb(listener: string, header: Buffer): Promise<LineClient> {
  const c = await LineClient.connect(px.port(listener), { localAddress: LB });
  c.write(header);
  return c;
}

const v1 = buildProxyHeaderV1({ family: 'tcp4', source: { address: '198.51.100.7', port: 4242 }, destination: { address: '203.0.113.1', port: 143 } });

describe('PROXY protocol listener', () => {
  test('v1 from a trusted balancer: the real client address is the one portier uses', async () => {
    const c = await viaLb('lb', v1);
    expect(await c.line()).toMatch(/^\* OK /);
    c.write('a LOGIN alice pw\r\n');
    // The real client is not local and not trusted: plaintext is refused before TLS.
    expect(await c.line()).toMatch(/^a NO \[PRIVACYREQUIRED\]/);
    c.close();
    const refused = await px.waitForLog((l) => l.msg.startsWith('Disconnected') && l.rip === '198.51.100.7');
    expect(refused.proxied_by).toBe(LB);
  });

  test('v2 with an SSL TLV counts as encrypted, and the backend sees the client', async () => {
    const from = await backend.logSize();
    const header = buildProxyHeaderV2({
      family: 'tcp6',
      source: { address: '2001:db8::7', port: 5555 },
      destination: { address: '2001:db8::1', port: 993 },
      tlvs: { ssl: { client: PP2_CLIENT.SSL, version: 'TLSv1.3' }, authority: 'mail.example.org' },
    });
    const c = await viaLb('lb', header);
    const greeting = await c.line();
    expect(greeting).not.toMatch(/STARTTLS|LOGINDISABLED/);
    c.write('a LOGIN alice pw\r\n');
    expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
    c.close();
    expect(await backend.waitForLog(/Login: user=<alice>.*rip=2001:db8::7/, 5000, from)).toBeTruthy();
  });

  test('curl --haproxy-protocol (a real PROXY sender) logs in through to Dovecot', async () => {
    const from = await backend.logSize();
    // curl sends its own connection addresses in the header; the Dovecot log shows them.
    const { stdout } = await run('curl', ['-sS', '--haproxy-protocol', '--interface', LB, '--login-options', 'AUTH=PLAIN', '-u', 'alice:pw', `imap://127.0.0.1:${px.port('mixed')}/`], { timeout: 10_000 }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` }));
    expect(stdout).toMatch(/INBOX/);
    expect(await backend.waitForLog(/Login: user=<alice>.*rip=127\.0\.0\.7/, 5000, from)).toBeTruthy();
  });

  test('a PROXY header from an untrusted address: refused at once', async () => {
    const c = await LineClient.connect(px.port('lb'), { localAddress: '127.0.0.5' });
    c.write(v1);
    await c.waitClosed(3000);
    expect(c.pending()).toBe('');
    await px.waitForLog((l) => l.msg.startsWith('haproxy: client not in haproxy_trusted_networks'));
  });

  test('a trusted balancer that sends no header is cut off at haproxy_timeout', async () => {
    const c = await LineClient.connect(px.port('lb'), { localAddress: LB });
    const t0 = Date.now();
    await c.waitClosed(5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(c.pending()).toBe('');
  });

  test('garbage instead of a header is refused', async () => {
    const c = await viaLb('lb', Buffer.from('PROXY TCP9 nonsense\r\n'));
    await c.waitClosed(3000);
    expect(c.pending()).toBe('');
  });
});

describe('PROXY-or-direct listener (haproxy_optional)', () => {
  test('direct clients are served, and cannot spoof an address with a PROXY line', async () => {
    const c = await greeted(px.port('mixed'));
    expect(c.greeting).toMatch(/^\* OK /);
    c.write(v1);
    expect(await c.line()).toMatch(/^PROXY BAD |^\* BAD /);
    c.close();
  });

  test('the trusted balancer may send a header, or nothing (a direct client of its own)', async () => {
    const a = await viaLb('mixed', v1);
    expect(await a.line()).toMatch(/^\* OK /);
    a.close();
    const b = await LineClient.connect(px.port('mixed'), { localAddress: LB });
    expect(await b.line(3000)).toMatch(/^\* OK /);
    b.close();
  });
});
