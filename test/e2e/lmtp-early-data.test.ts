/**
 * DATA goes to the backends as soon as the client's DATA is accepted (transaction.ts
 * startData), so their 354s travel while the client sends the message: the backend sees DATA
 * before the message is complete; a backend that refuses DATA, closes or does not answer
 * before its 354 gets its recipients that reply (or 451) after the client's dot, the others
 * are delivered; a message refused after DATA was sent (too big, not storable), cut by the
 * client or by the idle limit leaves no backend connection in the middle of DATA, and no
 * backend ever gets a dot.
 */
import { rename } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { LMTP_CLIENT_IDLE_TIMEOUT } from '../../src/lmtp/session.js';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import type { LineClient } from '../support/lines.js';
import { envelope, fakeConn as conn, lhloClient, quit, replies, saved, testMessage as message } from '../support/lmtp-mta.js';
import { reply, startFakeLmtp, type FakeConn, type FakeLmtp } from '../support/lmtp-peers.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { makeTempDir } from '../support/tmp.js';

const FAKE_IP = '127.0.0.7';
const MAX_SIZE = 1024 * 1024;
let good: FakeLmtp;
let refuser: FakeLmtp;
let closer: FakeLmtp;
let hanger: FakeLmtp;
let spoolDir: string;
let px: RunningPortier;

const client = (): Promise<LineClient> => lhloClient(px);

function users(): string {
  const at = (f: FakeLmtp, extra = ''): string => `proxy=y host=${FAKE_IP} port=${f.port}${extra}`;
  return [
    `g1@x.example:::::::${at(good)}`,
    `g2@x.example:::::::${at(good)}`,
    `r1@x.example:::::::${at(refuser)}`,
    `c1@x.example:::::::${at(closer)}`,
    `h1@x.example:::::::${at(hanger, ' proxy_timeout=1')}`,
    '',
  ].join('\n');
}

const DOT = Buffer.from('.\r\n');

/** Poll until `cond` holds (bounded). */
async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const dataCommands = (c: FakeConn): number => c.lines.filter((x) => x === 'DATA').length;

beforeAll(async () => {
  [good, refuser, closer, hanger] = await Promise.all([
    startFakeLmtp(FAKE_IP, { kind: 'ok' }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { data: 'refuse' }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { data: 'close' }),
    startFakeLmtp(FAKE_IP, { kind: 'ok' }, { data: 'hang' }),
  ]);
  spoolDir = await makeTempDir('portier-spool-');
  const config = testConfig(['lmtp'], { base: LOOPBACK_SETTINGS, settings: { log_level: 'debug', lmtp_max_mail_size: '1M', mail_temp_dir: spoolDir } });
  px = await startPortier(config, { users: users() });
});

afterAll(async () => {
  await px?.stop();
  await Promise.all([good, refuser, closer, hanger].map((f) => f?.close()));
});

describe('DATA goes to the backend while the client sends the message', () => {
  test('the backend has DATA before the client has sent a byte of the message; on a kept connection too', async () => {
    const before = good.conns.length;
    const l = await client();
    for (let i = 0; i < 2; i++) {
      await envelope(l, ['g1@x.example']);
      const c = conn(good, before);
      // Without the early DATA this never happens: DATA would wait for the whole message.
      await until('the backend saw DATA', () => dataCommands(c) === i + 1);
      expect(c.dots).toBe(i);
      l.write(Buffer.concat([message(`early-${i}`), DOT]));
      expect(await replies(l, 1)).toEqual([expect.stringMatching(saved('g1@x.example'))]);
      expect(c.dots).toBe(i + 1);
      expect(good.received.at(-1)?.toString()).toContain(`Subject: early-${i}\r\n`);
    }
    expect(good.conns.length - before).toBe(1);
    await quit(l);
  });

  test('a client that pipelines MAIL, RCPTs, DATA and the message in one write: replies in RCPT order, one per accepted recipient', async () => {
    const l = await client();
    l.write(
      Buffer.concat([
        Buffer.from('MAIL FROM:<>\r\nRCPT TO:<g1@x.example>\r\nRCPT TO:<nobody@x.example>\r\nRCPT TO:<r1@x.example>\r\nRCPT TO:<g2@x.example>\r\nDATA\r\n'),
        message('pipelined'),
        Buffer.from('.\r\nQUIT\r\n'),
      ]),
    );
    expect(await replies(l, 10)).toEqual([
      '250 2.1.0 OK',
      '250 2.1.5 OK',
      "550 5.1.1 <nobody@x.example> User doesn't exist",
      '250 2.1.5 OK',
      '250 2.1.5 OK',
      '354 OK',
      expect.stringMatching(saved('g1@x.example')),
      '554 5.6.0 fake refuses DATA',
      expect.stringMatching(saved('g2@x.example')),
      '221 2.0.0 Bye',
    ]);
    expect(good.received.at(-1)?.toString()).toContain('Subject: pipelined\r\n');
  });
});

describe('a backend that does not give its 354', () => {
  test('refuses DATA (554): that reply to its recipient after the dot, the others delivered; its connection gets QUIT and is not reused', async () => {
    const [beforeGood, beforeRefuser] = [good.conns.length, refuser.conns.length];
    const l = await client();
    await envelope(l, ['g1@x.example', 'r1@x.example', 'g2@x.example']);
    const r = conn(refuser, beforeRefuser);
    await until('the refusing backend saw DATA', () => dataCommands(r) === 1);
    // The refusal has arrived; the client hears it only after its dot, in RCPT order.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(l.pending()).toBe('');
    l.write(Buffer.concat([message('refused-by-one'), DOT]));
    expect(await replies(l, 3)).toEqual([expect.stringMatching(saved('g1@x.example')), '554 5.6.0 fake refuses DATA', expect.stringMatching(saved('g2@x.example'))]);
    expect(conn(good, beforeGood).dots).toBe(1);
    expect(good.received.at(-1)?.toString()).toContain('Subject: refused-by-one\r\n');
    // Its SMTP transaction is still open: QUIT, never kept.
    await r.closed;
    expect(r.lines.at(-1)).toBe('QUIT');
    expect(r.dots).toBe(0);
    await envelope(l, ['r1@x.example']);
    l.write(Buffer.concat([message('refused-again'), DOT]));
    expect(await replies(l, 1)).toEqual(['554 5.6.0 fake refuses DATA']);
    expect(refuser.conns.length - beforeRefuser).toBe(2);
    await quit(l);
  });

  test('closes after DATA, before its 354: 451 (connection lost) for its recipient after the dot, the other delivered', async () => {
    const before = closer.conns.length;
    const l = await client();
    await envelope(l, ['c1@x.example', 'g1@x.example']);
    const c = conn(closer, before);
    await c.closed;
    expect(c.lines.at(-1)).toBe('DATA');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(l.pending()).toBe('');
    l.write(Buffer.concat([message('closer'), DOT]));
    expect(await replies(l, 2)).toEqual(['451 4.4.0 Remote server not answering (connection lost)', expect.stringMatching(saved('g1@x.example'))]);
    expect(good.received.at(-1)?.toString()).toContain('Subject: closer\r\n');
    await quit(l);
    await px.waitForLog((x) => x.msg.startsWith(`Failed to send message to <c1@x.example> at ${FAKE_IP}:${closer.port}: `) && x.failure === 'remote');
  });

  test('does not answer DATA within proxy_timeout: 451 (timed out) for its recipient, the connection closed', async () => {
    const before = hanger.conns.length;
    const l = await client();
    await envelope(l, ['h1@x.example', 'g1@x.example']);
    const c = conn(hanger, before);
    await until('the silent backend saw DATA', () => dataCommands(c) === 1);
    // The timer runs while the client is still sending: proxy_timeout=1 passes before the dot.
    await c.closed;
    l.write(Buffer.concat([message('hanger'), DOT]));
    expect(await replies(l, 2)).toEqual(['451 4.4.0 Remote server not answering (timed out)', expect.stringMatching(saved('g1@x.example'))]);
    expect(c.dots).toBe(0);
    await quit(l);
  });
});

describe('a message that is not delivered after DATA was sent: the backend connection is cut, never given a dot', () => {
  test(`over lmtp_max_mail_size: 552 per recipient, the connection that had DATA closed, the next transaction on a new one`, async () => {
    const before = good.conns.length;
    const l = await client();
    await envelope(l, ['g1@x.example', 'g2@x.example']);
    const c = conn(good, before);
    await until('the backend saw DATA', () => dataCommands(c) === 1);
    l.write(Buffer.concat([message('too-big', `${'y'.repeat(98)}\r\n`.repeat(MAX_SIZE / 100 + 100)), DOT]));
    expect(await replies(l, 2)).toEqual(['552 5.3.4 Message too big for system', '552 5.3.4 Message too big for system']);
    await c.closed;
    // Cut, not QUIT: nothing more reached it, not even as message content.
    expect(c.lines.at(-1)).toBe('DATA');
    expect([c.dots, c.pending]).toEqual([0, 0]);
    await envelope(l, ['g1@x.example']);
    l.write(Buffer.concat([message('after-too-big'), DOT]));
    expect(await replies(l, 1)).toEqual([expect.stringMatching(saved('g1@x.example'))]);
    expect(good.conns.length - before).toBe(2);
    expect(conn(good, before + 1).dots).toBe(1);
    await quit(l);
  });

  test('not storable in mail_temp_dir: 451 4.3.0, the connection that had DATA closed without a dot', async () => {
    const before = good.conns.length;
    const l = await client();
    await envelope(l, ['g1@x.example']);
    const c = conn(good, before);
    await until('the backend saw DATA', () => dataCommands(c) === 1);
    // Past the 128 kB kept in memory the spool opens a file in mail_temp_dir, now gone.
    const away = `${spoolDir}.away`;
    await rename(spoolDir, away);
    try {
      l.write(Buffer.concat([message('not-stored', `${'z'.repeat(98)}\r\n`.repeat(2000)), DOT]));
      expect(await replies(l, 1)).toEqual(['451 4.3.0 Internal error occurred. Refer to server log for more information.']);
    } finally {
      await rename(away, spoolDir);
    }
    await c.closed;
    expect(c.lines.at(-1)).toBe('DATA');
    expect([c.dots, c.pending]).toEqual([0, 0]);
    await quit(l);
  });

  test('the client goes away in the middle of the message: the backend connection is closed, it never got the dot', async () => {
    const before = good.conns.length;
    const l = await client();
    await envelope(l, ['g1@x.example', 'g2@x.example']);
    const c = conn(good, before);
    await until('the backend saw DATA', () => dataCommands(c) === 1);
    l.write(message('cut-off', 'half a message\r\n'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    l.socket.destroy();
    await c.closed;
    expect(c.lines.at(-1)).toBe('DATA');
    expect(c.dots).toBe(0);
  });

  test('the client is idle too long in the middle of the message: 421 4.4.2, the backend connection closed without a dot', async () => {
    const before = good.conns.length;
    const l = await client();
    await envelope(l, ['g1@x.example']);
    const c = conn(good, before);
    await until('the backend saw DATA', () => dataCommands(c) === 1);
    // portier runs in this process: the idle timer, re-armed by this chunk, runs on a fake clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      l.write(message('idle-in-data', 'half a message\r\n'));
      for (const end = Date.now() + 100; Date.now() < end; ) await new Promise((r) => setImmediate(r));
      vi.advanceTimersByTime(LMTP_CLIENT_IDLE_TIMEOUT + 1000);
    } finally {
      vi.useRealTimers();
    }
    expect(await reply(l)).toBe(`421 4.4.2 ${px.portier.runtime.hostname} Disconnected for inactivity`);
    await c.closed;
    expect(c.lines.at(-1)).toBe('DATA');
    expect(c.dots).toBe(0);
  });
});
