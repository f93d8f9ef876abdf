/**
 * Backend connection reuse within one client LMTP session (src/lmtp/pool.ts): several
 * transactions on one client connection use one backend connection per backend (real
 * Dovecot backends count the connections), recipients mixed across two backends, a backend
 * restarted between transactions, scripted backends that close a kept connection (after
 * DATA, at the next MAIL, with 421), RSET before MAIL after an abandoned transaction, what is
 * never reused (refused DATA, other client facts after XCLIENT/LHLO), the bound on kept
 * connections, the idle QUIT, and no connection left open after the client goes. Between
 * client sessions (backend/idle.ts): the next session's XCLIENT on an earlier session's
 * connection (real Dovecot), a backend that refuses it, a reload, the bound and shutdown.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { LMTP_KEPT_IDLE_TIMEOUT, LMTP_MAX_KEPT_CONNECTIONS } from '../../src/lmtp/pool.js';
import { CLIENT_IP, greeted } from '../support/clients.js';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { readReply, reply, startFakeLmtp, type FakeLmtp, type FakeOptions } from '../support/lmtp-peers.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const MTA_IP = '127.0.0.6';
const FAKE_IP = '127.0.0.7';
const XCLIENT_CAP = 'XCLIENT ADDR PORT PROTO HELO LOGIN SESSION TTL TIMEOUT';

/** A scripted backend's behaviour in these tests (test/support/lmtp-peers.ts). */
type Script = Omit<FakeOptions, 'caps' | 'smtp' | 'tls'>;
type Fake = FakeLmtp;

/** A scripted LMTP backend that records every connection and when it closes. */
function fakeBackend(script: Script = {}): Promise<Fake> {
  return startFakeLmtp(FAKE_IP, { kind: 'ok' }, { ...script, caps: [XCLIENT_CAP] });
}

let a: DovecotBackend;
let b: DovecotBackend;
/** Adds a Received header, which shows the client address XCLIENT gave it. */
let d: DovecotBackend;
let px: RunningPortier;
/** Default idle connections between sessions, at most SHARED_IDLE per backend. */
let shared: RunningPortier;
const SHARED_IDLE = 2;
const fakes: Record<string, Fake> = {};
const FAKE_SCRIPTS: Record<string, Script> = {
  plain: {},
  'close-after-data': { closeAfterData: true },
  'close-at-mail': { mail: (n) => (n >= 2 ? 'close' : 'ok') },
  'quit-at-mail': { mail: (n) => (n >= 2 ? '421' : 'ok') },
  'no-rset': { rset: 'refuse' },
  'no-data': { data: 'refuse' },
  'no-pipelining': { noPipelining: true },
  'quit-linger': { quitLingerMs: 300 },
  'quit-stays': { quitLingerMs: 10_000 },
  // Between client sessions (the `shared` portier).
  'xclient-once': { xclientOnce: true },
  unfit: {},
  reload: {},
  bound: {},
  // Five routes for the bound on kept connections, one more than LMTP_MAX_KEPT_CONNECTIONS.
  ...Object.fromEntries(Array.from({ length: LMTP_MAX_KEPT_CONNECTIONS + 1 }, (_, i) => [`r${i}`, {}])),
};

function users(): string {
  const dove = (d: DovecotBackend): string => `proxy=y host=${d.host} port=${d.ports.lmtp}`;
  const lines = [`alice@a.example:::::::${dove(a)}`, `carol@a.example:::::::${dove(a)}`, `bob@b.example:::::::${dove(b)}`];
  for (const name of Object.keys(FAKE_SCRIPTS)) lines.push(`${name}@x.example:::::::proxy=y host=${FAKE_IP} port=${fakes[name]?.port}`);
  return `${lines.join('\n')}\n`;
}

function message(subject: string): Buffer {
  return Buffer.from(`From: sender@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@test>\r\n\r\nHello.\r\n`);
}

async function client(from = CLIENT_IP, p: RunningPortier = px): Promise<LineClient> {
  const l = await greeted(p, 'lmtp', { from, greetingTimeoutMs: 10_000 });
  expect(l.greeting).toMatch(/^220 /);
  l.write('LHLO mta.test\r\n');
  await readReply(l);
  return l;
}

/** One transaction on an open client connection; the DATA replies (one per recipient). */
async function transaction(l: LineClient, rcpts: string[], subject: string): Promise<string[]> {
  l.write(`MAIL FROM:<s@example.org>\r\n${rcpts.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
  expect(await reply(l)).toBe('250 2.1.0 OK');
  for (const r of rcpts) expect(await reply(l), r).toBe('250 2.1.5 OK');
  expect(await reply(l)).toBe('354 OK');
  l.write(Buffer.concat([message(subject), Buffer.from('.\r\n')]));
  const out: string[] = [];
  for (let i = 0; i < rcpts.length; i++) out.push(await reply(l));
  return out;
}

async function quit(l: LineClient): Promise<void> {
  l.write('QUIT\r\n');
  expect(await reply(l)).toBe('221 2.0.0 Bye');
  await l.waitClosed();
}

/** A whole client session through the `shared` portier: one transaction to `rcpt`, then QUIT; the DATA reply. */
async function sharedSession(rcpt: string, subject: string, from = CLIENT_IP): Promise<string> {
  const l = await client(from, shared);
  const replies = await transaction(l, [rcpt], subject);
  expect(replies).toHaveLength(1);
  await quit(l);
  return replies[0] ?? '';
}

async function inbox(d: DovecotBackend, user: string, subject: string): Promise<Buffer[]> {
  return (await d.listMessages(user)).filter((m) => m.includes(`Subject: ${subject}\r\n`));
}

/** Dovecot's LMTP logs "Connect from <peer>" once per connection. */
async function connectsSince(d: DovecotBackend, offset: number): Promise<number> {
  const text = Buffer.from(await d.readLog()).subarray(offset).toString();
  return text.split('\n').filter((l) => /lmtp\(\d+\): Info: Connect from 127\.0\.0\.1/.test(l)).length;
}

beforeAll(async () => {
  const trust = { trustedNetworks: ['127.0.0.1'], protocols: ['lmtp' as const] };
  [a, b, d] = await Promise.all([
    startDovecot({ ...trust, address: '127.0.0.2', users: [{ user: 'alice@a.example', password: 'x' }, { user: 'carol@a.example', password: 'x' }] }),
    startDovecot({ ...trust, address: '127.0.0.3', users: [{ user: 'bob@b.example', password: 'x' }] }),
    startDovecot({ ...trust, address: '127.0.0.4', users: [{ user: 'dina@d.example', password: 'x' }], extraConf: 'lmtp_add_received_header = yes\n' }),
  ]);
  for (const [name, script] of Object.entries(FAKE_SCRIPTS)) fakes[name] = await fakeBackend(script);
  // The tests up to "between client sessions" count connections per session: none carries over.
  px = await startPortier(testConfig(['lmtp'], { base: LOOPBACK_SETTINGS, settings: { login_trusted_networks: MTA_IP, log_level: 'debug', lmtp_proxy_idle_connections: 0 } }), { users: users() });
  const sharedUsers = `${users()}dina@d.example:::::::proxy=y host=${d.host} port=${d.ports.lmtp}\n`;
  shared = await startPortier(testConfig(['lmtp'], { base: LOOPBACK_SETTINGS, settings: { login_trusted_networks: MTA_IP, log_level: 'debug', lmtp_proxy_idle_connections: SHARED_IDLE } }), { users: sharedUsers });
});

afterAll(async () => {
  await Promise.all([px?.stop(), shared?.stop()]);
  await Promise.all(Object.values(fakes).map((f) => f.close()));
  await Promise.all([a?.stop(), b?.stop(), d?.stop()]);
});

const fake = (name: string): Fake => {
  const f = fakes[name];
  if (f === undefined) throw new Error(`no fake ${name}`);
  return f;
};

describe('one backend connection per backend for a client session (real Dovecot)', () => {
  test('five transactions, recipients mixed across two backends: all delivered once, one connection to each backend', async () => {
    const [fromA, fromB] = await Promise.all([a.logSize(), b.logSize()]);
    const l = await client();
    const plan = [['alice@a.example'], ['bob@b.example'], ['alice@a.example', 'bob@b.example'], ['carol@a.example'], ['bob@b.example', 'carol@a.example']];
    for (const [i, rcpts] of plan.entries()) {
      const replies = await transaction(l, rcpts, `reuse-${i}`);
      expect(replies).toEqual(rcpts.map((r) => expect.stringMatching(new RegExp(`^250 2\\.0\\.0 <${r.replace('.', '\\.')}> \\S+ Saved$`))));
    }
    for (const [i, rcpts] of plan.entries()) {
      for (const r of rcpts) expect(await inbox(r.endsWith('@b.example') ? b : a, r, `reuse-${i}`), `${r} reuse-${i}`).toHaveLength(1);
    }
    await quit(l);
    // The backends see their connection closed when the client leaves, and only one each.
    await a.waitForLog(/Disconnect from 127\.0\.0\.5: /, 5000, fromA);
    await b.waitForLog(/Disconnect from 127\.0\.0\.5: /, 5000, fromB);
    expect(await connectsSince(a, fromA)).toBe(1);
    expect(await connectsSince(b, fromB)).toBe(1);
    // Health, metrics and logs stay per transaction; reuse shows in the log.
    await px.waitForLog((x) => x.msg === 'Sent message to <carol@a.example> at ' + `${a.host}:${a.ports.lmtp}` && x.reused === true);
  });

  test('a backend restarted between transactions: the next one opens a new connection, the client sees nothing', async () => {
    const l = await client();
    expect(await transaction(l, ['bob@b.example'], 'before-restart')).toEqual([expect.stringMatching(/^250 2\.0\.0 <bob@b\.example> /)]);
    await b.kill();
    await b.start();
    const from = await b.logSize();
    expect(await transaction(l, ['bob@b.example', 'alice@a.example'], 'after-restart')).toEqual([
      expect.stringMatching(/^250 2\.0\.0 <bob@b\.example> /),
      expect.stringMatching(/^250 2\.0\.0 <alice@a\.example> /),
    ]);
    expect(await inbox(b, 'bob@b.example', 'after-restart')).toHaveLength(1);
    expect(await connectsSince(b, from)).toBe(1);
    await quit(l);
  });
});

describe('kept connections the backend closes are replaced transparently', () => {
  for (const [name, what] of [
    ['close-after-data', 'closes right after the DATA replies'],
    ['close-at-mail', 'closes when the next MAIL arrives'],
    ['quit-at-mail', 'answers 421 to the next MAIL'],
    ['no-rset', 'refuses the RSET an abandoned transaction needs'],
  ] as const) {
    test(`a backend that ${what}: every transaction is delivered, each on a new connection`, async () => {
      const f = fake(name);
      const before = f.conns.length;
      const l = await client();
      for (let i = 0; i < 3; i++) {
        if (name === 'no-rset') {
          // MAIL and RCPT reach the backend, then RSET abandons the transaction there.
          l.write(`MAIL FROM:<>\r\nRCPT TO:<${name}@x.example>\r\nRSET\r\n`);
          for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '250 2.0.0 OK']) expect(await reply(l)).toBe(want);
        }
        expect(await transaction(l, [`${name}@x.example`], `${name}-${i}`)).toEqual([expect.stringMatching(/^250 2\.0\.0 /)]);
      }
      await quit(l);
      await f.allClosed();
      const conns = f.conns.slice(before);
      // Once a kept connection fails, one new connection (never a loop). Without RSET, the
      // connection DATA completed on is reused for the next abandoned transaction: 1 + 3.
      expect(conns.length).toBe(name === 'no-rset' ? 4 : 3);
      if (name === 'no-rset') expect(conns.slice(0, 3).map((c) => c.lines.filter((x) => x === 'RSET').length)).toEqual([1, 1, 1]);
      for (const c of conns) expect(c.lines.filter((x) => x.startsWith('DATA')).length).toBeLessThanOrEqual(1);
    });
  }

  test('after an abandoned transaction (RSET), the kept connection gets RSET before the next MAIL', async () => {
    const f = fake('plain');
    const before = f.conns.length;
    const l = await client();
    l.write('MAIL FROM:<>\r\nRCPT TO:<plain@x.example>\r\nRSET\r\n');
    for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '250 2.0.0 OK']) expect(await reply(l)).toBe(want);
    expect(await transaction(l, ['plain@x.example'], 'after-rset')).toEqual([expect.stringMatching(/^250 2\.0\.0 /)]);
    expect(await transaction(l, ['plain@x.example'], 'after-data')).toEqual([expect.stringMatching(/^250 2\.0\.0 /)]);
    await quit(l);
    await f.allClosed();
    const conns = f.conns.slice(before);
    expect(conns).toHaveLength(1);
    expect(conns[0]?.lines.slice(3)).toEqual([
      'MAIL FROM:<>',
      'RCPT TO:<plain@x.example>',
      'RSET',
      'MAIL FROM:<s@example.org>',
      'RCPT TO:<plain@x.example>',
      'DATA',
      // After a completed DATA the backend is ready for MAIL: no RSET.
      'MAIL FROM:<s@example.org>',
      'RCPT TO:<plain@x.example>',
      'DATA',
      'QUIT',
    ]);
  });
});

describe('pipelining towards the backend (RFC 2920)', () => {
  test('offered: RSET, MAIL and the first RCPT go in one write; without it, one command at a time', async () => {
    for (const [name, pipelined] of [['plain', true], ['no-pipelining', false]] as const) {
      const f = fake(name);
      const before = f.conns.length;
      const l = await client();
      l.write(`MAIL FROM:<>\r\nRCPT TO:<${name}@x.example>\r\nRSET\r\n`);
      for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '250 2.0.0 OK']) expect(await reply(l)).toBe(want);
      expect(await transaction(l, [`${name}@x.example`], `pipelining-${name}`)).toEqual([expect.stringMatching(/^250 2\.0\.0 /)]);
      await quit(l);
      await f.allClosed();
      const conns = f.conns.slice(before);
      expect(conns).toHaveLength(1);
      expect(conns[0]?.lines.slice(3)).toEqual(['MAIL FROM:<>', `RCPT TO:<${name}@x.example>`, 'RSET', 'MAIL FROM:<s@example.org>', `RCPT TO:<${name}@x.example>`, 'DATA', 'QUIT']);
      expect(conns[0]?.maxPerRead, name).toBe(pipelined ? 3 : 1);
    }
  });
});

describe('what is never reused', () => {
  test('a refused DATA: the connection gets QUIT, the next transaction opens a new one', async () => {
    const f = fake('no-data');
    const before = f.conns.length;
    const l = await client();
    for (let i = 0; i < 2; i++) {
      l.write('MAIL FROM:<>\r\nRCPT TO:<no-data@x.example>\r\nDATA\r\n');
      for (const want of ['250 2.1.0 OK', '250 2.1.5 OK', '354 OK']) expect(await reply(l)).toBe(want);
      l.write(Buffer.concat([message('refused'), Buffer.from('.\r\n')]));
      expect(await reply(l)).toBe('554 5.6.0 fake refuses DATA');
    }
    await f.conns[before]?.closed;
    await quit(l);
    await f.allClosed();
    expect(f.conns.slice(before).map((c) => c.lines.at(-1))).toEqual(['QUIT', 'QUIT']);
  });

  test('after the client\'s XCLIENT or a new LHLO name, kept connections are dropped and new ones carry the new facts', async () => {
    const f = fake('plain');
    const before = f.conns.length;
    const l = await client(MTA_IP);
    await transaction(l, ['plain@x.example'], 'facts-1');
    l.write('XCLIENT ADDR=192.0.2.44\r\n');
    expect(await reply(l)).toMatch(/^220 /);
    await f.conns[before]?.closed;
    l.write('LHLO mta.test\r\n');
    await readReply(l);
    await transaction(l, ['plain@x.example'], 'facts-2');
    l.write('LHLO other-name.test\r\n');
    await readReply(l);
    await transaction(l, ['plain@x.example'], 'facts-3');
    await quit(l);
    await f.allClosed();
    const xclients = f.conns.slice(before).map((c) => c.lines.find((x) => x.startsWith('XCLIENT')) ?? '');
    expect(xclients).toHaveLength(3);
    expect(xclients[0]).toMatch(/ADDR=127\.0\.0\.6 .*HELO=mta\.test /);
    expect(xclients[1]).toMatch(/ADDR=192\.0\.2\.44 .*HELO=mta\.test /);
    expect(xclients[2]).toMatch(/ADDR=192\.0\.2\.44 .*HELO=other-name\.test /);
  });
});

describe('between client sessions (lmtp_proxy_idle_connections)', () => {
  test('real Dovecot: the next client session uses the last one\'s backend connection, and XCLIENT tells Dovecot its own address', async () => {
    const offset = (await d.readLog()).length;
    const ids: string[] = [];
    for (const [from, subject] of [['127.0.0.8', 'between-1'], ['127.0.0.9', 'between-2']] as const) {
      const r = await sharedSession('dina@d.example', subject, from);
      const id = /^250 2\.0\.0 <dina@d\.example> (\S+) Saved/.exec(r)?.[1];
      expect(id, r).toBeDefined();
      ids.push(id ?? '');
    }
    // One connection for both sessions; each message says which client it came from.
    expect(await connectsSince(d, offset)).toBe(1);
    const [first] = await inbox(d, 'dina@d.example', 'between-1');
    const [second] = await inbox(d, 'dina@d.example', 'between-2');
    expect(first?.toString('latin1')).toMatch(/^Received: from \S+ \(\[127\.0\.0\.8\]\)/);
    expect(second?.toString('latin1')).toMatch(/^Received: from \S+ \(\[127\.0\.0\.9\]\)/);
    // Dovecot's session ids are the ones portier forwarded, one per client session (Dovecot
    // numbers the transactions of a connection: the second is logged as `<id>:T2`).
    expect(new Set(ids).size).toBe(2);
    for (const id of ids) await d.waitForLog(new RegExp(`lmtp\\(dina@d\\.example\\)<\\d+><${id}(:T\\d+)?>: Info: .*saved mail to INBOX`), 5000, offset);
  });

  test('a backend that refuses a second XCLIENT: the session gets a new connection, and none of that backend\'s is kept again', async () => {
    const f = fake('xclient-once');
    const before = f.conns.length;
    for (let i = 0; i < 3; i++) expect(await sharedSession('xclient-once@x.example', `once-${i}`)).toMatch(/^250 /);
    await f.allClosed();
    // The first connection got the refused XCLIENT, then QUIT; the next two were QUIT with their sessions.
    const conns = f.conns.slice(before);
    expect(conns.map((c) => c.lines.filter((x) => x.startsWith('XCLIENT')).length)).toEqual([2, 1, 1]);
    expect(conns.map((c) => c.lines.at(-1))).toEqual(['QUIT', 'QUIT', 'QUIT']);
  });

  test('a client whose HELO name XCLIENT cannot carry (a trusted MTA\'s, too long for the line): not given a connection that holds an earlier client\'s', async () => {
    const f = fake('unfit');
    const before = f.conns.length;
    expect(await sharedSession('unfit@x.example', 'unfit-1')).toMatch(/^250 /);
    // A trusted MTA forwards its client's HELO: 200 plus signs, 600 octets once xtext-encoded again.
    const l = await client(MTA_IP, shared);
    l.write(`XCLIENT HELO=${'+2B'.repeat(200)}\r\n`);
    expect((await readReply(l)).at(-1)).toMatch(/^220 /);
    l.write('LHLO mta.test\r\n');
    expect((await readReply(l)).at(-1)).toMatch(/^250 /);
    expect(await transaction(l, ['unfit@x.example'], 'unfit-2')).toHaveLength(1);
    await quit(l);
    await f.conns[before]?.closed;
    const conns = f.conns.slice(before);
    expect(conns).toHaveLength(2);
    // The earlier session's connection: one XCLIENT (with its HELO), then QUIT, nothing more.
    expect(conns[0]?.lines.filter((x) => x.startsWith('XCLIENT'))).toEqual([expect.stringMatching(/ HELO=mta\.test /)]);
    expect(conns[0]?.lines.at(-1)).toBe('QUIT');
    // The new one was told the client without a HELO name.
    expect(conns[1]?.lines.filter((x) => x.startsWith('XCLIENT'))).toEqual([expect.not.stringMatching(/HELO=/)]);
  });

  test('a reload: the idle connection made with the old settings gets QUIT, the next session opens a new one', async () => {
    const f = fake('reload');
    const before = f.conns.length;
    expect(await sharedSession('reload@x.example', 'reload-1')).toMatch(/^250 /);
    expect(f.conns[before]?.open).toBe(true);
    const file = join(shared.dir, 'portier.yaml');
    shared.portier.reload(parseConfig(readFileSync(file, 'utf8'), file));
    await f.conns[before]?.closed;
    expect(f.conns[before]?.lines.at(-1)).toBe('QUIT');
    expect(await sharedSession('reload@x.example', 'reload-2')).toMatch(/^250 /);
    expect(f.conns.length - before).toBe(2);
    expect(f.conns[before + 1]?.lines.filter((x) => x.startsWith('XCLIENT'))).toHaveLength(1);
  });

  test(`at most ${SHARED_IDLE} idle per backend: past it the oldest gets QUIT; at shutdown all do`, async () => {
    const f = fake('bound');
    const before = f.conns.length;
    const idleGauge = async (): Promise<number> => Number(/^portier_lmtp_idle_backend_connections (\d+)$/m.exec(await shared.portier.metrics.registry.metrics())?.[1]);
    const idleBefore = await idleGauge();
    // Three sessions at once: each needs its own backend connection.
    const ls = [await client(CLIENT_IP, shared), await client(CLIENT_IP, shared), await client(CLIENT_IP, shared)];
    for (const [i, l] of ls.entries()) expect(await transaction(l, ['bound@x.example'], `bound-${i}`)).toHaveLength(1);
    expect(f.conns.length - before).toBe(3);
    for (const l of ls) await quit(l);
    // The first released is the oldest: the third one past the bound sends it QUIT.
    await f.conns[before]?.closed;
    const conns = f.conns.slice(before);
    expect(conns.map((c) => c.lines.at(-1) === 'QUIT')).toEqual([true, false, false]);
    expect(conns.map((c) => c.open)).toEqual([false, true, true]);
    expect(await idleGauge()).toBe(idleBefore + SHARED_IDLE);
    await shared.stop();
    await f.allClosed();
    expect(conns.map((c) => c.lines.at(-1))).toEqual(['QUIT', 'QUIT', 'QUIT']);
  });
});

describe('bounded, and nothing left open', () => {
  test('QUIT: the backend closes first, portier only after it (RFC 5321 §4.1.1.10), so no TIME-WAIT is left on portier\'s ports', async () => {
    const f = fake('quit-linger');
    const before = f.conns.length;
    const l = await client();
    await transaction(l, ['quit-linger@x.example'], 'quit-order');
    await quit(l);
    const c = f.conns[before];
    await c?.closed;
    expect(c?.lines.at(-1)).toBe('QUIT');
    // The old way (QUIT and FIN in one write) reached the backend long before its own close.
    expect(c?.peerClosedFirst).toBe(false);
  });

  test('QUIT: a backend that answers but does not close is cut a second later', async () => {
    const f = fake('quit-stays');
    const before = f.conns.length;
    const l = await client();
    await transaction(l, ['quit-stays@x.example'], 'quit-stays');
    const t0 = Date.now();
    await quit(l);
    await f.conns[before]?.closed;
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(f.conns[before]?.peerClosedFirst).toBe(true);
  });

  test(`at most LMTP_MAX_KEPT_CONNECTIONS (${LMTP_MAX_KEPT_CONNECTIONS}) kept: the least recently used gets QUIT`, async () => {
    const routes = Array.from({ length: LMTP_MAX_KEPT_CONNECTIONS + 1 }, (_, i) => fake(`r${i}`));
    const l = await client();
    for (const [i, f] of routes.entries()) {
      await transaction(l, [`r${i}@x.example`], `bound-${i}`);
      expect(f.open()).toBe(1);
    }
    await routes[0]?.conns[0]?.closed;
    expect(routes[0]?.conns[0]?.lines.at(-1)).toBe('QUIT');
    expect(routes.slice(1).map((f) => f.open())).toEqual(routes.slice(1).map(() => 1));
    l.socket.destroy();
    // The client went away without QUIT: every backend connection is closed all the same.
    await Promise.all(routes.map((f) => f.allClosed()));
    expect(routes.map((f) => f.conns.length)).toEqual(routes.map(() => 1));
  });

  test(`a kept connection unused for LMTP_KEPT_IDLE_TIMEOUT (${LMTP_KEPT_IDLE_TIMEOUT / 1000} s) gets QUIT; the session goes on`, async () => {
    const f = fake('plain');
    const before = f.conns.length;
    const l = await client();
    // portier runs in this process: the pool's timer, set when the transaction ends, runs on a fake clock.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await transaction(l, ['plain@x.example'], 'idle-1');
      vi.advanceTimersByTime(LMTP_KEPT_IDLE_TIMEOUT - 1000);
      await new Promise((r) => setImmediate(r));
      expect(f.conns[before]?.open).toBe(true);
      vi.advanceTimersByTime(2000);
      await f.conns[before]?.closed;
    } finally {
      vi.useRealTimers();
    }
    expect(f.conns[before]?.lines.at(-1)).toBe('QUIT');
    await transaction(l, ['plain@x.example'], 'idle-2');
    await quit(l);
    await f.allClosed();
    expect(f.conns.length - before).toBe(2);
  });
});
