/**
 * LMTP failure modes: a backend that times out, one that dies in the middle of DATA, one that
 * answers only some recipients (scripted fake backends next to a real Dovecot), exactly what
 * portier sends upstream (XCLIENT, ORCPT), a message over the size limit, a client that goes
 * away mid-DATA, abusive clients while another delivers, and 421 on shutdown.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { LMTP_MAX_RECIPIENTS } from '../../src/lmtp/commands.js';
import { LMTP_CLIENT_IDLE_TIMEOUT } from '../../src/lmtp/session.js';
import { CLIENT_IP, greeted } from '../support/clients.js';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { readReply, reply, smtplib, startFakeLmtp, type FakeLmtp } from '../support/lmtp-peers.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';

const MTA_IP = '127.0.0.6';
const FAKE_IP = '127.0.0.7';
const XCLIENT_CAP = 'XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT';
let a: DovecotBackend;
let silent: FakeLmtp;
let dies: FakeLmtp;
let partial: FakeLmtp;
let good: FakeLmtp;
let untrusting: FakeLmtp;
let smtpFake: FakeLmtp;
let tlsFake: FakeLmtp;
let wrongNameFake: FakeLmtp;
let caFile: string;
let px: RunningPortier;
let small: RunningPortier;

function users(): string {
  const at = (host: string, port: number, extra = ''): string => `proxy=y host=${host} port=${port}${extra}`;
  return [
    `alice@a.example:::::::${at(a.host, a.ports.lmtp)}`,
    `slow@x.example:::::::${at(FAKE_IP, silent.port, ' proxy_timeout=1')}`,
    `die@x.example:::::::${at(FAKE_IP, dies.port)}`,
    `p1@x.example:::::::${at(FAKE_IP, partial.port)}`,
    `p2@x.example:::::::${at(FAKE_IP, partial.port)}`,
    `xc@x.example:::::::${at(FAKE_IP, good.port)}`,
    `ren@x.example:::::::${at(FAKE_IP, good.port, ' destuser=other@x.example')}`,
    `nt@x.example:::::::${at(FAKE_IP, untrusting.port, ' proxy_not_trusted=y')}`,
    `smtp1@x.example:::::::${at(FAKE_IP, smtpFake.port, ' protocol=smtp')}`,
    `smtp2@x.example:::::::${at(FAKE_IP, smtpFake.port, ' protocol=smtp')}`,
    `tls@x.example:::::::${at(FAKE_IP, tlsFake.port, ' ssl=yes')}`,
    `wrongname@x.example:::::::${at(FAKE_IP, wrongNameFake.port, ' ssl=yes')}`,
    `anycert@x.example:::::::${at(FAKE_IP, wrongNameFake.port, ' ssl=any-cert')}`,
    `sslname@x.example:::::::${at(FAKE_IP, wrongNameFake.port, ' ssl=yes ssl_server_name=other.example')}`,
    `src@x.example:::::::${at(FAKE_IP, good.port, ' source_ip=127.0.0.8')}`,
    `named@x.example:::::::proxy=y host=backend.invalid hostip=${FAKE_IP} port=${good.port}`,
    '',
  ].join('\n');
}

/** `extra`: more top-level settings (YAML lines). */
/** Each test reads whole backend dialogues: no connection carries over to a later session (see lmtp-reuse.test.ts). */
function config(extra = ''): string {
  return testConfig(['lmtp'], { base: LOOPBACK_SETTINGS, settings: { ssl_client_ca_file: caFile, login_trusted_networks: MTA_IP, log_level: 'debug', lmtp_proxy_idle_connections: 0 }, extra });
}

function message(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: sender@example.org\r\nSubject: ${subject}\r\n\r\n${body}`);
}

async function inbox(user: string, subject: string): Promise<Buffer[]> {
  return (await a.listMessages(user)).filter((m) => m.includes(`Subject: ${subject}\r\n`));
}

async function client(p: RunningPortier = px, from = CLIENT_IP): Promise<LineClient> {
  const l = await greeted(p, 'lmtp', { from, greetingTimeoutMs: 10_000 });
  expect(l.greeting).toMatch(/^220 /);
  return l;
}

beforeAll(async () => {
  const ca = await sharedTestCa();
  caFile = ca.caFile;
  const [fakeCert, otherCert]: IssuedCert[] = await Promise.all([ca.issue('fake-lmtp', { sans: [FAKE_IP] }), ca.issue('other-name', { sans: ['other.example'] })]);
  a = await startDovecot({ address: '127.0.0.2', protocols: ['lmtp'], trustedNetworks: ['127.0.0.1'], users: [{ user: 'alice@a.example', password: 'x' }] });
  [silent, dies, partial, good, untrusting] = await Promise.all([
    startFakeLmtp(FAKE_IP, { kind: 'silent' }),
    startFakeLmtp(FAKE_IP, { kind: 'die-in-data', afterBytes: 64 * 1024 }),
    startFakeLmtp(FAKE_IP, { kind: 'partial-replies', replies: 1 }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { caps: [XCLIENT_CAP] }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { caps: [XCLIENT_CAP] }),
  ]);
  [smtpFake, tlsFake, wrongNameFake] = await Promise.all([
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { smtp: true, caps: ['8BITMIME'] }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { tls: fakeCert as IssuedCert }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { tls: otherCert as IssuedCert }),
  ]);
  px = await startPortier(config(), { users: users() });
  small = await startPortier(config('lmtp_max_mail_size: 100k\nshutdown_timeout: 5s\n'), { users: users() });
});

afterAll(async () => {
  await px?.stop();
  await small?.stop();
  await Promise.all([silent, dies, partial, good, untrusting, smtpFake, tlsFake, wrongNameFake].map((f) => f?.close()));
  await a?.stop();
});

describe('backend failures are per backend, and nothing is delivered twice', () => {
  test('a backend that does not answer within proxy_timeout: 451 (timed out) for its recipient only', async () => {
    const started = Date.now();
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['slow@x.example', 'alice@a.example'], message: message('slow-one') });
    expect(r.rcpt).toEqual([
      [451, '4.4.0 Remote server not answering (timed out)'],
      [250, '2.1.5 OK'],
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(await inbox('alice@a.example', 'slow-one')).toHaveLength(1);
  });

  test('a backend that dies in the middle of DATA: 451 for exactly its recipient, the other is saved once', async () => {
    const msg = message('dies-mid-data', `${'x'.repeat(76)}\r\n`.repeat(3000));
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['alice@a.example', 'die@x.example'], message: msg });
    expect(r.rcpt.map((x) => x[0])).toEqual([250, 250]);
    expect(r.data[0]?.[1]).toMatch(/^2\.0\.0 <alice@a\.example> /);
    expect(r.data[1]).toEqual([451, '4.4.0 Remote server not answering (connection lost)']);
    expect(dies.received.at(-1)?.length).toBeLessThan(msg.length);
    expect(await inbox('alice@a.example', 'dies-mid-data')).toEqual([msg]);
  });

  test('a backend that answers one of its two recipients and closes: 250 for that one, 451 for the other', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['p1@x.example', 'alice@a.example', 'p2@x.example'], message: message('partial') });
    expect(r.rcpt.map((x) => x[0])).toEqual([250, 250, 250]);
    expect(r.data.map((x) => x[0])).toEqual([250, 250, 451]);
    expect(r.data[0]?.[1]).toMatch(/^2\.0\.0 <p1@x\.example> /);
    expect(r.data[1]?.[1]).toMatch(/^2\.0\.0 <alice@a\.example> /);
    expect(r.data[2]).toEqual([451, '4.4.0 Remote server not answering (connection lost)']);
    expect(partial.connections()).toBe(1);
  });

  test('a client that goes away in the middle of DATA: nothing is delivered', async () => {
    const l = await client();
    l.write('LHLO mta.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
    await readReply(l);
    expect(await reply(l)).toBe('250 2.1.0 OK');
    expect(await reply(l)).toBe('250 2.1.5 OK');
    expect(await reply(l)).toBe('354 OK');
    l.write(message('cut-off', 'half a message\r\n'));
    await new Promise((r) => setTimeout(r, 100));
    l.socket.destroy();
    await px.waitForLog((x) => x.reason === 'client_disconnected' && typeof x.session === 'string');
    await new Promise((r) => setTimeout(r, 300));
    expect(await inbox('alice@a.example', 'cut-off')).toEqual([]);
  });
});

describe('what portier sends to backends', () => {
  test('XCLIENT with ADDR, PORT, HELO, PROTO, SESSION and the lowered TTL; then LHLO again', async () => {
    const before = good.lines.length;
    const r = await smtplib({ port: px.port('lmtp'), from: 'x@example.org', rcpts: ['xc@x.example'], message: message('xclient-line') });
    expect(r.data.map((x) => x[0])).toEqual([250]);
    const id = /<xc@x\.example> (\S+) Saved/.exec(r.data[0]?.[1] ?? '')?.[1] ?? '';
    const sent = good.lines.slice(before);
    expect(sent[0]).toMatch(/^LHLO \S+$/);
    expect(sent[1]).toMatch(new RegExp(`^XCLIENT ADDR=127\\.0\\.0\\.5 PORT=\\d+ HELO=mta\\.test PROTO=LMTP SESSION=${id} TTL=4$`));
    expect(sent.slice(2)).toEqual([sent[0], 'MAIL FROM:<x@example.org>', 'RCPT TO:<xc@x.example>', 'DATA', 'QUIT']);
    // A trusted MTA's client (address, HELO name) is passed on; its TTL goes down by one per hop.
    const hop = good.lines.length;
    const viaMta = await smtplib({ port: px.port('lmtp'), source: MTA_IP, xclient: 'ADDR=192.0.2.9 HELO=origin.example TTL=3', from: '', rcpts: ['xc@x.example'], message: message('xclient-ttl') });
    expect(viaMta.data.map((x) => x[0])).toEqual([250]);
    expect(good.lines.slice(hop).find((l) => l.startsWith('XCLIENT'))).toMatch(/^XCLIENT ADDR=192\.0\.2\.9 PORT=\d+ HELO=origin\.example PROTO=LMTP SESSION=\S+ TTL=2$/);
  });

  test('destuser: RCPT to the new address with ORCPT=rfc822;<original>', async () => {
    const before = good.lines.length;
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['ren+tag@x.example'], message: message('orcpt') });
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(good.lines.slice(before)).toContain('RCPT TO:<other+tag@x.example> ORCPT=rfc822;ren+2Btag@x.example');
  });

  test('proxy_not_trusted: no XCLIENT even when the backend offers it', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['nt@x.example'], message: message('not-trusted') });
    expect(r.data.map((x) => x[0])).toEqual([250]);
    expect(untrusting.lines.some((l) => l.startsWith('XCLIENT'))).toBe(false);
    expect(untrusting.lines).toContain('RCPT TO:<nt@x.example>');
  });
});

describe('passdb fields for LMTP', () => {
  test('protocol=smtp: EHLO, and the one DATA reply answers every recipient of that backend', async () => {
    const before = smtpFake.lines.length;
    const r = await smtplib({ port: px.port('lmtp'), from: 's@example.org', mailOptions: ['BODY=8BITMIME'], rcpts: ['smtp1@x.example', 'alice@a.example', 'smtp2@x.example'], message: message('via-smtp') });
    expect(r.rcpt.map((x) => x[0])).toEqual([250, 250, 250]);
    expect(r.data.map((x) => x[0])).toEqual([250, 250, 250]);
    const sent = smtpFake.lines.slice(before);
    expect(sent[0]).toMatch(/^EHLO /);
    expect(sent.slice(1)).toEqual(['MAIL FROM:<s@example.org> BODY=8BITMIME', 'RCPT TO:<smtp1@x.example>', 'RCPT TO:<smtp2@x.example>', 'DATA', 'QUIT']);
    expect(smtpFake.received.at(-1)?.toString()).toContain('Subject: via-smtp\r\n');
  });

  test('ssl=yes: implicit TLS with the certificate verified; a wrong name is refused, ssl=any-cert or ssl_server_name accepts it', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['tls@x.example', 'wrongname@x.example', 'anycert@x.example', 'sslname@x.example'], message: message('backend-ssl') });
    expect(r.rcpt).toEqual([
      [250, '2.1.5 OK'],
      [451, '4.4.0 Remote server not answering (TLS)'],
      [250, '2.1.5 OK'],
      // host is an IP; the certificate names other.example, which ssl_server_name asks for.
      [250, '2.1.5 OK'],
    ]);
    expect(r.data.map((x) => x[0])).toEqual([250, 250, 250]);
    expect(tlsFake.received.at(-1)?.toString()).toContain('Subject: backend-ssl\r\n');
    expect(wrongNameFake.received.at(-1)?.toString()).toContain('Subject: backend-ssl\r\n');
  });

  test('source_ip picks the address portier connects from; hostip skips DNS for a host name', async () => {
    const r = await smtplib({ port: px.port('lmtp'), from: '', rcpts: ['src@x.example', 'named@x.example'], message: message('source-ip') });
    expect(r.data.map((x) => x[0])).toEqual([250, 250]);
    // Different source addresses: two connections to the same backend.
    expect(good.peers.slice(-2).sort()).toEqual(['127.0.0.1', '127.0.0.8']);
  });
});

describe('limits and abusive clients', () => {
  test('a message over lmtp_max_mail_size (no SIZE declared): 552 per recipient, nothing stored, the session goes on', async () => {
    const l = await client(small);
    l.write('LHLO mta.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nRCPT TO:<xc@x.example>\r\nDATA\r\n');
    expect(await readReply(l)).toContain('250 SIZE 102400');
    for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(l)).toBe(want);
    l.write(Buffer.concat([message('too-big', `${'y'.repeat(98)}\r\n`.repeat(3000)), Buffer.from('.\r\n')]));
    expect(await reply(l)).toBe('552 5.3.4 Message too big for system');
    expect(await reply(l)).toBe('552 5.3.4 Message too big for system');
    l.write('MAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
    for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(l)).toBe(want);
    l.write(Buffer.concat([message('small-enough'), Buffer.from('.\r\nQUIT\r\n')]));
    expect(await reply(l)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
    expect(await reply(l)).toBe('221 2.0.0 Bye');
    expect(await inbox('alice@a.example', 'too-big')).toEqual([]);
    expect(await inbox('alice@a.example', 'small-enough')).toHaveLength(1);
  });

  test(`more than LMTP_MAX_RECIPIENTS (${LMTP_MAX_RECIPIENTS}) RCPTs in one transaction: 452 4.5.3 for the rest`, async () => {
    const l = await client();
    l.write(`LHLO mta.test\r\nMAIL FROM:<>\r\n${'RCPT TO:<nobody@a.example>\r\n'.repeat(LMTP_MAX_RECIPIENTS + 2)}RSET\r\nMAIL FROM:<>\r\nRCPT TO:<nobody@a.example>\r\nQUIT\r\n`);
    await readReply(l);
    expect(await reply(l)).toBe('250 2.1.0 OK');
    for (let i = 0; i < LMTP_MAX_RECIPIENTS; i++) expect(await reply(l)).toBe("550 5.1.1 <nobody@a.example> User doesn't exist");
    expect(await reply(l)).toBe('452 4.5.3 Too many recipients');
    expect(await reply(l)).toBe('452 4.5.3 Too many recipients');
    // A new transaction starts counting again.
    expect(await reply(l)).toBe('250 2.0.0 OK');
    expect(await reply(l)).toBe('250 2.1.0 OK');
    expect(await reply(l)).toBe("550 5.1.1 <nobody@a.example> User doesn't exist");
    expect(await reply(l)).toBe('221 2.0.0 Bye');
  });

  test('a huge line, garbage and too many bad commands get clear replies and a close, while another client delivers', async () => {
    const host = px.portier.runtime.hostname;
    const huge = (async () => {
      const l = await client();
      l.write('A'.repeat(10_000));
      expect(await reply(l)).toBe(`421 4.7.0 ${host} Command line too long, closing connection`);
      await l.waitClosed();
    })();
    const garbage = (async () => {
      const l = await client();
      l.write(Buffer.concat([randomBytes(200).map((x) => (x === 0x0a ? 0x20 : x)), Buffer.from('\r\nGET / HTTP/1.1\r\nEHLO x\r\nMAIL FROM:<>\r\n')]));
      expect(await reply(l)).toBe('500 5.5.1 Unknown command');
      expect(await reply(l)).toBe('500 5.5.1 Unknown command');
      expect(await reply(l)).toBe('500 5.5.1 Unknown command');
      expect(await reply(l)).toBe('503 5.5.1 LHLO needed first');
      l.write('LHLO ok\r\nMAIL FROM:<not an address>\r\nRCPT TO:<alice@a.example>\r\n');
      await readReply(l);
      expect(await reply(l)).toBe('501 5.5.4 Invalid FROM: invalid address');
      expect(await reply(l)).toBe('503 5.5.1 MAIL needed first');
      l.close();
    })();
    const bad = (async () => {
      const l = await client();
      l.write('FOO\r\n'.repeat(12));
      for (let i = 0; i < 9; i++) expect(await reply(l)).toBe('500 5.5.1 Unknown command');
      expect(await reply(l)).toBe(`421 4.7.0 ${host} Too many invalid commands.`);
      await l.waitClosed();
    })();
    const delivery = smtplib({ port: px.port('lmtp'), from: '', rcpts: ['alice@a.example'], message: message('despite-abuse') });
    await Promise.all([huge, garbage, bad]);
    expect((await delivery).data.map((x) => x[0])).toEqual([250]);
    expect(await inbox('alice@a.example', 'despite-abuse')).toHaveLength(1);
    await px.waitForLog((x) => x.reason === 'line_too_long');
    await px.waitForLog((x) => x.reason === 'too_many_bad_commands');
  });
});

describe('idle clients', () => {
  test(`a client silent for LMTP_CLIENT_IDLE_TIMEOUT (${LMTP_CLIENT_IDLE_TIMEOUT / 60_000} min) gets 421 4.4.2 and is closed`, async () => {
    const l = await client();
    // portier runs in this process: its idle timer, armed by the next command, runs on a fake clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      l.write('NOOP\r\n');
      expect(await reply(l)).toBe('250 2.0.0 OK');
      vi.advanceTimersByTime(LMTP_CLIENT_IDLE_TIMEOUT - 1000);
      await new Promise((r) => setImmediate(r));
      expect(l.pending()).toBe('');
      vi.advanceTimersByTime(2000);
    } finally {
      vi.useRealTimers();
    }
    expect(await reply(l)).toBe(`421 4.4.2 ${px.portier.runtime.hostname} Disconnected for inactivity`);
    await l.waitClosed();
    await px.waitForLog((x) => x.reason === 'idle_timeout');
  });
});

describe('shutdown', () => {
  test('an idle client gets 421 at once; a transaction in flight finishes first, then 421', async () => {
    const host = small.portier.runtime.hostname;
    const idle = await client(small);
    idle.write('LHLO mta.test\r\n');
    await readReply(idle);
    const busy = await client(small);
    busy.write('LHLO mta.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@a.example>\r\nDATA\r\n');
    await readReply(busy);
    for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(busy)).toBe(want);
    busy.write('Subject: during-shutdown\r\n\r\nfirst half\r\n');
    const stopping = small.stop();
    expect(await reply(idle)).toBe(`421 4.3.2 ${host} Shutting down`);
    await idle.waitClosed();
    busy.write('second half\r\n.\r\n');
    expect(await reply(busy)).toMatch(/^250 2\.0\.0 <alice@a\.example> /);
    expect(await reply(busy)).toBe(`421 4.3.2 ${host} Shutting down`);
    await busy.waitClosed();
    await stopping;
    expect(await inbox('alice@a.example', 'during-shutdown')).toEqual([Buffer.from('Subject: during-shutdown\r\n\r\nfirst half\r\nsecond half\r\n')]);
  });
});
