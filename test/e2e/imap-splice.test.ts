/**
 * The post-login splice against a real Dovecot backend: a client that stops reading does not
 * make portier buffer the backend's output, half-close passes the client's last words through,
 * and the idle limit closes a silent session.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: DovecotBackend;
let px: RunningPortier;
const SIZE = 20 * 1024 * 1024;

beforeAll(async () => {
  backend = await startDovecot({ address: '127.0.0.2', users: [{ user: 'alice', password: 'pw' }], trustedNetworks: ['127.0.0.0/8'] });
  const line = 'x'.repeat(98);
  const body = Array.from({ length: Math.ceil(SIZE / 100) }, () => line).join('\r\n');
  await backend.deliver('alice', `Subject: big\r\n\r\n${body}\r\n`);
  px = await startPortier(
    testConfig(['imap'], { settings: { login_proxy_idle_timeout: '2s' } }),
    { users: `alice:{PLAIN}pw::::::proxy=y host=${backend.host} port=${backend.ports.imap}\n` },
  );
}, 120_000);

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

async function loggedIn(): Promise<LineClient> {
  const c = await greeted(px);
  c.write('a LOGIN alice pw\r\nb SELECT INBOX\r\n');
  await c.until('a');
  await c.until('b');
  return c;
}

test('a client that stops reading pauses the backend instead of filling portier', async () => {
  const c = await loggedIn();
  c.socket.pause();
  c.write('f FETCH 1 BODY.PEEK[]\r\n');
  await new Promise((r) => setTimeout(r, 1500));
  const session = px.portier.sessions().find((s) => s.state === 'spliced');
  expect(session).toBeDefined();
  // The kernel buffers some; portier itself holds at most a few socket high-water marks.
  expect(session?.clientBuffered).toBeLessThan(1024 * 1024);
  expect(session?.bytesFromBackend).toBeLessThan(SIZE / 2);
  c.socket.resume();
  const lines = await c.until('f', 60_000);
  expect(lines.at(-1)).toMatch(/^f OK /);
  const total = lines.reduce((n, l) => n + l.length + 2, 0);
  expect(total).toBeGreaterThan(SIZE);
  c.close();
}, 90_000);

test('half-close: LOGOUT then FIN from the client still gets the backend\'s goodbye', async () => {
  const c = await loggedIn();
  c.write('z LOGOUT\r\n');
  c.socket.end();
  const lines = await c.until('z');
  expect(lines[0]).toMatch(/^\* BYE /);
  expect(lines.at(-1)).toMatch(/^z OK /);
  await c.waitClosed();
});

test('a silent proxied session is closed at login_proxy_idle_timeout', async () => {
  const c = await loggedIn();
  const t0 = Date.now();
  await c.waitClosed(8000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
  const ended = await px.waitForLog((l) => l.reason === 'idle_timeout');
  expect(ended.msg).toBe('Disconnected: idle');
  expect(typeof ended.in).toBe('number');
});
