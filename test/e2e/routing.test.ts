/**
 * Routing and backend trouble with real Dovecot backends: proxy_maybe lands on the local or the
 * remote backend, a backend that comes back is used again, a hanging backend is failed at once
 * after a while, and a backend killed under 200 sessions leaves portier serving and every
 * client closed politely, spread over login_proxy_max_disconnect_delay.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted, imapCommandOn, type Greeted } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import type { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let remote: DovecotBackend;
let local: DovecotBackend;
let px: RunningPortier;
let blackhole: Server;
/** An IMAP server on 127.0.0.1, reached by the name `localhost`. */
let onLocalhost: FakeImap;

const MANY = 200;

beforeAll(async () => {
  const users = [{ user: 'lu', password: 'pw' }, { user: 'ru', password: 'pw' }, { user: 'refer', password: 'pw' }, { user: 'netok', password: 'pw' }, { user: 'pinned', password: 'pw' }, { user: 'fwdok', password: 'pw' }, { user: 'realok', password: 'pw' }, ...Array.from({ length: MANY }, (_, i) => ({ user: `m${i}`, password: 'pw' }))];
  const extraConf = 'default_process_limit = 500\nmail_max_userip_connections = 500\n';
  remote = await startDovecot({ address: '127.0.0.2', users, trustedNetworks: ['127.0.0.0/8'], extraConf });
  local = await startDovecot({ address: '127.0.0.3', users, trustedNetworks: ['127.0.0.0/8'] });
  await remote.deliver('lu', 'Subject: on remote\r\n\r\nr\r\n');
  await local.deliver('lu', 'Subject: on local\r\n\r\nl\r\n');
  await remote.deliver('ru', 'Subject: on remote\r\n\r\nr\r\n');
  blackhole = createServer(() => {});
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.4', r));
  const bh = (blackhole.address() as { port: number }).port;
  onLocalhost = await startFakeImap({ host: '127.0.0.1', respond: acceptingLogins() });
  const port = await freePort();
  const lines = [
    // Destinations by name: resolved by portier, or pinned with hostip (no DNS at all).
    `named:::::::proxy=y host=localhost port=${onLocalhost.port} nopassword=y`,
    `pinned:::::::proxy=y host=imap.example.invalid hostip=${remote.host} port=${remote.ports.imap} nopassword=y`,
    `nxdomain:::::::proxy=y host=imap.example.invalid port=${remote.ports.imap} nopassword=y`,
    // allow_nets sees the client address a trusted front forwarded; allow_real_nets the peer's own.
    `fwdok:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y allow_nets=10.9.0.0/16`,
    `realno:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y allow_real_nets=10.9.0.0/16`,
    `realok:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y allow_real_nets=127.0.0.5/32 allow_nets=10.9.0.0/16`,
    // proxy_maybe pointing at portier's own address (no port): served by the local backend.
    `lu:::::::proxy_maybe host=127.0.0.1 nopassword=y`,
    `ru:::::::proxy_maybe host=${remote.host} port=${remote.ports.imap} nopassword=y`,
    `hang:::::::proxy=y host=127.0.0.4 port=${bh} nopassword=y proxy_timeout=1s`,
    `refer:::::::host=imap2.example.org nopassword=y`,
    `referno:::::::host=imap2.example.org port=1143 nologin nopassword=y`,
    `netok:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y allow_nets=127.0.0.0/8`,
    `netno:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y allow_nets=10.0.0.0/8,192.168.0.0/16`,
    ...Array.from({ length: MANY }, (_, i) => `m${i}:::::::proxy=y host=${remote.host} port=${remote.ports.imap} nopassword=y`),
    '',
  ];
  px = await startPortier(
    testConfig(['imap'], {
      settings: { login_trusted_networks: '127.0.0.0/8', proxy_host_immediate_failure_after: '1s', login_proxy_max_disconnect_delay: '2s' },
      extra: `local_backend:\n  imap: ${local.host}:${local.ports.imap}\n`,
      ports: { imap: port },
    }),
    { users: lines.join('\n') },
  );
}, 120_000);

afterAll(async () => {
  await px?.stop();
  blackhole?.close();
  await onLocalhost?.close();
  await remote?.stop();
  await local?.stop();
});

async function loginOn(c: Greeted, user: string): Promise<{ c: LineClient; reply: string; ms: number }> {
  const { reply, ms } = await imapCommandOn(c, `a LOGIN ${user} pw`, 15_000);
  return { c, reply, ms };
}

/** Log in from 127.0.0.5; `forwardedIp` plays a trusted front telling portier the real client (ID). */
async function login(user: string, forwardedIp?: string): Promise<{ c: LineClient; reply: string; ms: number }> {
  const c = await greeted(px);
  if (forwardedIp !== undefined) {
    c.write(`i ID ("x-originating-ip" "${forwardedIp}" "x-originating-port" "40000")\r\n`);
    expect((await c.until('i')).at(-1)).toMatch(/^i OK /);
  }
  return loginOn(c, user);
}

async function subject(c: LineClient): Promise<string> {
  c.write('s SELECT INBOX\r\nf FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n');
  await c.until('s');
  const lines = await c.until('f');
  return lines.find((l) => l.startsWith('Subject:')) ?? '';
}

describe('proxy_maybe', () => {
  test('pointing at this host: served by local_backend, with the TTL unchanged', async () => {
    const { c, reply } = await login('lu');
    expect(reply).toMatch(/^a OK /);
    expect(await subject(c)).toBe('Subject: on local');
    c.close();
    const started = await px.waitForLog((l) => l.user === 'lu' && l.msg.startsWith('Started proxying'));
    expect(started.backend).toBe(`${local.host}:${local.ports.imap} (local)`);
  });

  test('pointing elsewhere: proxied to the remote backend', async () => {
    const { c, reply } = await login('ru');
    expect(reply).toMatch(/^a OK /);
    expect(await subject(c)).toBe('Subject: on remote');
    c.close();
  });
});

describe('referrals and allow_nets', () => {
  test('host without proxy: logged in at local_backend, with an RFC 2221 referral in the OK', async () => {
    const { c, reply } = await login('refer');
    expect(reply).toBe('a OK [REFERRAL imap://refer;AUTH=*@imap2.example.org/] Logged in, but you should use this server instead.');
    c.write('n NOOP\r\n');
    expect((await c.until('n')).at(-1)).toMatch(/^n OK /);
    c.close();
  });

  test('host with nologin: a NO referral', async () => {
    const { c, reply } = await login('referno');
    expect(reply).toBe('a NO [REFERRAL imap://referno;AUTH=*@imap2.example.org:1143/] Try this server instead.');
    c.close();
  });

  test('allow_nets decides from the client address', async () => {
    const ok = await login('netok');
    expect(ok.reply).toMatch(/^a OK /);
    ok.c.close();
    const no = await login('netno');
    expect(no.reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    no.c.close();
    const why = await px.waitForLog((l) => l.user === 'netno' && l.msg.startsWith('login refused'));
    expect(why.why).toMatch(/allow_nets does not include 127\.0\.0\.5/);
  });
});

describe('backend trouble', () => {
  test('a hanging backend is failed at once once it has failed for proxy_host_immediate_failure_after', async () => {
    // Two full timeouts make the backend "down" (failing for ≥ 1 s without a success).
    expect((await login('hang')).reply).toBe('a NO [UNAVAILABLE] Account is temporarily unavailable.');
    // Connected and greeted beforehand, so the next logins follow the second failure at once
    // (the record is forgotten when nobody tries for proxy_host_immediate_failure_after).
    const [probeConn, fastConn] = await Promise.all([greeted(px), greeted(px)]);
    expect((await login('hang')).reply).toBe('a NO [UNAVAILABLE] Account is temporarily unavailable.');
    // One login probes (and waits); a second one meanwhile fails immediately.
    const probe = loginOn(probeConn, 'hang');
    await new Promise((r) => setTimeout(r, 100));
    const fast = await loginOn(fastConn, 'hang');
    expect(fast.reply).toBe('a NO [UNAVAILABLE] Account is temporarily unavailable.');
    expect(fast.ms).toBeLessThan(500);
    expect((await probe).ms).toBeGreaterThanOrEqual(800);
    await px.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('Host is down'));
  });

  test('a backend that comes back is used again', async () => {
    await local.stop();
    expect((await login('lu')).reply).toBe('a NO [UNAVAILABLE] Account is temporarily unavailable.');
    await local.start();
    const { c, reply } = await login('lu');
    expect(reply).toMatch(/^a OK /);
    c.close();
  });

  test(`killing a backend under ${MANY} sessions: portier keeps serving, every client is closed politely and spread out`, async () => {
    const clients: LineClient[] = [];
    for (let i = 0; i < MANY; i += 20) {
      const batch = await Promise.all(Array.from({ length: Math.min(20, MANY - i) }, (_, j) => login(`m${i + j}`)));
      for (const b of batch) {
        expect(b.reply).toMatch(/^a OK /);
        clients.push(b.c);
      }
    }
    expect(px.portier.sessions().filter((s) => s.state === 'spliced').length).toBeGreaterThanOrEqual(MANY);
    const t0 = Date.now();
    await remote.kill();
    const closedAt = await Promise.all(
      clients.map(async (c) => {
        await c.waitClosed(10_000);
        return Date.now() - t0;
      }),
    );
    // Every client got a goodbye before its connection closed.
    expect(clients.every((c) => c.pending().includes('* BYE'))).toBe(true);
    // Spread over login_proxy_max_disconnect_delay (2 s), not all at once.
    const sorted = [...closedAt].sort((x, y) => x - y);
    expect((sorted.at(-1) ?? 0) - (sorted[0] ?? 0)).toBeGreaterThan(800);
    expect(sorted.at(-1)).toBeLessThan(6000);
    // portier itself is fine.
    const { c, reply } = await login('ru');
    expect(reply).toMatch(/^a NO \[UNAVAILABLE\]|^a OK /);
    c.close();
    const fresh = await greeted(px);
    expect(fresh.greeting).toMatch(/^\* OK /);
    fresh.close();
    await remote.start();
  }, 120_000);
});

describe('destinations by name, and client networks', () => {
  test('host as a DNS name is resolved (localhost), and the name is what the log shows', async () => {
    const { c, reply } = await login('named');
    expect(reply).toMatch(/^a OK /);
    c.close();
    expect(onLocalhost.connections.at(-1)?.received.some((l) => /LOGIN "?named"? /.test(l))).toBe(true);
    const started = await px.waitForLog((l) => l.user === 'named' && l.msg.startsWith('Started proxying'));
    expect(started.backend).toBe(`localhost:${onLocalhost.port}`);
  });

  test('hostip skips DNS: a name that does not resolve still reaches the pinned address', async () => {
    const { c, reply } = await login('pinned');
    expect(reply).toMatch(/^a OK /);
    c.close();
    const started = await px.waitForLog((l) => l.user === 'pinned' && l.msg.startsWith('Started proxying'));
    expect(started.backend).toBe(`imap.example.invalid:${remote.ports.imap}`);
  });

  test('a name that does not resolve is a temporary failure, with the reason in the log', async () => {
    const { c, reply } = await login('nxdomain');
    expect(reply).toBe('a NO [UNAVAILABLE] Account is temporarily unavailable.');
    c.close();
    const why = await px.waitForLog((l) => l.user === 'nxdomain' && l.msg.startsWith('proxy login failed'));
    expect(why.msg).toMatch(/DNS lookup of imap\.example\.invalid failed/);
  });

  test('allow_nets checks the forwarded client address; allow_real_nets the connecting peer', async () => {
    const direct = await login('fwdok');
    expect(direct.reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    direct.c.close();
    const forwarded = await login('fwdok', '10.9.1.2');
    expect(forwarded.reply).toMatch(/^a OK /);
    forwarded.c.close();
    // The peer is 127.0.0.5 whatever it forwards: allow_real_nets is not fooled by ID.
    const realNo = await login('realno', '10.9.1.2');
    expect(realNo.reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    realNo.c.close();
    const why = await px.waitForLog((l) => l.user === 'realno' && l.msg.startsWith('login refused'));
    expect(why.why).toMatch(/allow_real_nets does not include 127\.0\.0\.5/);
    const realOk = await login('realok', '10.9.1.2');
    expect(realOk.reply).toMatch(/^a OK /);
    realOk.c.close();
  });
});
