/**
 * R13: clients that connect and never log in. Per address, `login_max_preauth_per_ip` turns
 * the next one away with the protocol's goodbye (trusted networks exempt; logged-in and
 * closed sessions give their place back); in all, `login_max_preauth` sheds the oldest idle
 * one when full, so hundreds of slowloris connections cannot keep real users out; a
 * trickling client is cut at login_timeout, which activity does not extend.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted, imapCommandOn } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: FakeImap;
const instances: RunningPortier[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  backend = await startFakeImap({ host: '127.0.0.2', respond: acceptingLogins() });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(instances.map((p) => p.stop()));
  await backend?.close();
});

async function portier(limits: string): Promise<RunningPortier> {
  const px = await startPortier(
    testConfig(['imap', 'pop3'], { settings: { login_trusted_networks: '127.0.0.6' }, extra: `${limits}\n` }),
    { users: `alice:{PLAIN}alice-pw::::::proxy=y host=${backend.host} port=${backend.port}\n` },
  );
  instances.push(px);
  return px;
}

/** A slowloris client: connects and sends one byte every `everyMs`, never a whole line. */
function slow(port: number, from: string, everyMs: number): Promise<{ socket: Socket; received: () => string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const s = connect({ host: '127.0.0.1', port, localAddress: from }, () => {
      const t = setInterval(() => {
        if (!s.destroyed) s.write('a');
      }, everyMs);
      s.on('close', () => clearInterval(t));
      resolve({ socket: s, received: () => text });
    });
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.once('error', reject);
    s.on('error', () => {});
    sockets.push(s);
  });
}

describe('login_max_preauth_per_ip', () => {
  test('the sixth idle client from one address gets a BYE; others, trusted ones and freed places are fine', async () => {
    const px = await portier('login_max_preauth_per_ip: 5');
    const idle = [];
    for (let i = 0; i < 5; i++) {
      const c = await greeted(px);
      expect(c.greeting).toMatch(/^\* OK /);
      idle.push(c);
    }
    const sixth = await greeted(px);
    expect(sixth.greeting).toBe('* BYE [UNAVAILABLE] Too many connections from your address.');
    await sixth.waitClosed();
    await px.waitForLog((l) => l.reason === 'too_many_connections');
    // POP3 shares the count (same address, not logged in): refused with its own words.
    const pop = await greeted(px, 'pop3');
    expect(pop.greeting).toBe('-ERR [SYS/TEMP] Too many connections from your address.');
    // Another address, and a trusted one (a load balancer), are not affected.
    const other = await greeted(px, 'imap', { from: '127.0.0.7' });
    expect(other.greeting).toMatch(/^\* OK /);
    const trusted = [];
    for (let i = 0; i < 8; i++) {
      const c = await greeted(px, 'imap', { from: '127.0.0.6' });
      expect(c.greeting).toMatch(/^\* OK /);
      trusted.push(c);
    }
    // A closed connection gives its place back.
    idle.pop()?.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await greeted(px);
    expect(again.greeting).toMatch(/^\* OK /);
    // A logged-in (proxied) session does not count as waiting: its place is free at once.
    expect((await imapCommandOn(again, 'a LOGIN alice alice-pw')).reply).toMatch(/^a OK /);
    const afterLogin = await greeted(px);
    expect(afterLogin.greeting).toMatch(/^\* OK /);
    expect(px.portier.runtime.limits.preauthCount).toBe(5 + 1 + 8);
    for (const c of [...idle, other, again, afterLogin, ...trusted]) c.close();
  });
});

describe('login_max_preauth (slowloris)', () => {
  test('300 trickling clients against a cap of 200: the oldest are shed, 30 real logins all succeed', async () => {
    const px = await portier('login_max_preauth: 200\nlogin_max_preauth_per_ip: 0\nlogin_timeout: 60s');
    const crowd = [];
    for (let i = 0; i < 300; i++) crowd.push(await slow(px.port('imap'), `127.0.0.${10 + (i % 20)}`, 300));
    await new Promise((r) => setTimeout(r, 300));
    expect(px.portier.runtime.limits.preauthCount).toBeLessThanOrEqual(200);
    const ok: string[] = [];
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        await new Promise((r) => setTimeout(r, i * 20));
        const c = await greeted(px);
        expect(c.greeting).toMatch(/^\* OK /);
        ok.push((await imapCommandOn(c, `l${i} LOGIN alice alice-pw`)).reply);
        c.close();
      }),
    );
    expect(ok).toHaveLength(30);
    expect(ok.every((l) => /^l\d+ OK /.test(l))).toBe(true);
    // The first 100 (the oldest) made room for the next 100, and for a real client when the house was full; each got a polite goodbye.
    await new Promise((r) => setTimeout(r, 200));
    const shed = crowd.filter((c) => c.socket.destroyed || c.received().includes('Connection queue full'));
    expect(shed.length).toBeGreaterThanOrEqual(100);
    expect(crowd.slice(0, 100).every((c) => c.received().endsWith('* BYE [UNAVAILABLE] Connection queue full.\r\n'))).toBe(true);
    expect(px.portier.runtime.limits.preauthCount).toBeLessThanOrEqual(200);
    const shedLines = px.logs().filter((l) => l.reason === 'connection_queue_full').length;
    expect(shedLines).toBeGreaterThanOrEqual(100);
    expect(shedLines).toBeLessThanOrEqual(130);
    for (const c of crowd) c.socket.destroy();
  }, 60_000);

  test('300 trickling clients from one address: 100 are let in, the rest refused, others still log in', async () => {
    const px = await portier('login_max_preauth_per_ip: 100\nlogin_timeout: 60s');
    const crowd = [];
    for (let i = 0; i < 300; i++) crowd.push(await slow(px.port('imap'), '127.0.0.8', 300));
    await new Promise((r) => setTimeout(r, 300));
    expect(crowd.filter((c) => c.received().startsWith('* OK '))).toHaveLength(100);
    expect(crowd.filter((c) => c.received() === '* BYE [UNAVAILABLE] Too many connections from your address.\r\n')).toHaveLength(200);
    const c = await greeted(px);
    expect(c.greeting).toMatch(/^\* OK /);
    expect((await imapCommandOn(c, 'a LOGIN alice alice-pw')).reply).toMatch(/^a OK /);
    c.close();
    for (const s of crowd) s.socket.destroy();
  }, 60_000);

  test('a client trickling a byte at a time is still cut at login_timeout', async () => {
    const px = await portier('login_timeout: 2s');
    const t0 = Date.now();
    const c = await slow(px.port('pop3'), '127.0.0.5', 200);
    await new Promise<void>((resolve) => c.socket.on('close', () => resolve()));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(c.received()).toMatch(/-ERR Disconnected for inactivity\.\r\n$/);
  });
});
