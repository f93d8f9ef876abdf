/**
 * R27: mail_max_userip_connections (Dovecot's default 10) counted by portier for proxied
 * sessions, per protocol, user and client address: the 11th is refused with Dovecot's text
 * and may try again on the same connection once one ends; failed backend logins and closed
 * sessions give their slot back, so 1000 connect/login/logout cycles leave nothing counted.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { CLIENT_IP, greeted, imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import type { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let imapBackend: FakeImap;
let px: RunningPortier;

beforeAll(async () => {
  imapBackend = await startFakeImap({ host: '127.0.0.2', respond: acceptingLogins() });
  const closed = await freePort('127.0.0.3');
  const to = `proxy=y host=${imapBackend.host} port=${imapBackend.port}`;
  px = await startPortier(
    testConfig(['imap', 'pop3'], { settings: { login_proxy_max_reconnects: 0, mail_max_userip_connections: 10 } }),
    {
      users: [
        `alice:{PLAIN}alice-pw::::::${to}`,
        `bob:{PLAIN}bob-pw::::::${to}`,
        `carolyn:{PLAIN}carol-pw::::::${to} user=carol`,
        `down:{PLAIN}down-pw::::::proxy=y host=127.0.0.3 port=${closed}`,
        '',
      ].join('\n'),
    },
  );
});

afterAll(async () => {
  await px?.stop();
  await imapBackend?.close();
});

const limits = () => px.portier.runtime.limits;

async function login(user: string, pass: string, from = CLIENT_IP, tag = 'a'): Promise<{ c: LineClient; reply: string }> {
  const { c, reply } = await imapCommand(px, `${tag} LOGIN ${user} ${pass}`, { from });
  expect(c.greeting).toMatch(/^\* OK /);
  return { c, reply };
}

async function settled(pred: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 25));
}

test('ten sessions of one user from one address; the eleventh is refused, and gets in once one ends', async () => {
  const sessions: LineClient[] = [];
  for (let i = 0; i < 10; i++) {
    const { c, reply } = await login('alice', 'alice-pw');
    expect(reply).toMatch(/^a OK /);
    sessions.push(c);
  }
  expect(limits().userIpCount('imap', '127.0.0.5', 'alice')).toBe(10);
  const { c: eleventh, reply } = await login('alice', 'alice-pw');
  expect(reply).toBe('a NO [UNAVAILABLE] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)');
  await px.waitForLog((l) => l.msg === 'login refused: Maximum number of connections from user+IP exceeded (mail_max_userip_connections=10)');
  // Others are not affected: the same user from another address, another user, the same user over POP3.
  const elsewhere = await login('alice', 'alice-pw', '127.0.0.7');
  expect(elsewhere.reply).toMatch(/^a OK /);
  const bob = await login('bob', 'bob-pw');
  expect(bob.reply).toMatch(/^a OK /);
  const pop = await greeted(px, 'pop3');
  pop.write('USER alice\r\n');
  expect(await pop.line()).toBe('+OK');
  pop.write('PASS alice-pw\r\n');
  // Counted apart from IMAP, so not refused: the login goes on to the backend (an IMAP server here, so it fails there).
  expect(await pop.line()).toBe('-ERR [SYS/TEMP] Account is temporarily unavailable.');
  pop.close();
  // One session ends: the refused client may try again on the same connection.
  sessions.pop()?.close();
  await settled(() => limits().userIpCount('imap', '127.0.0.5', 'alice') === 9);
  eleventh.write('b LOGIN alice alice-pw\r\n');
  expect((await eleventh.until('b')).at(-1)).toMatch(/^b OK /);
  for (const c of [...sessions, eleventh, elsewhere.c, bob.c]) c.close();
  await settled(() => limits().userIpKeys === 0);
  expect(limits().userIpKeys).toBe(0);
});

test('the count is by the passdb user (after its rename) and failed backend logins give the slot back', async () => {
  const carols: LineClient[] = [];
  for (let i = 0; i < 10; i++) {
    const { c, reply } = await login('carolyn', 'carol-pw');
    expect(reply).toMatch(/^a OK /);
    carols.push(c);
  }
  expect(limits().userIpCount('imap', '127.0.0.5', 'carol')).toBe(10);
  const refused = await login('carolyn', 'carol-pw');
  expect(refused.reply).toMatch(/mail_max_userip_connections=10/);
  for (const c of [...carols, refused.c]) c.close();
  // A backend that refuses the connection: twelve tries on one connection, each a plain unavailable.
  const c = await greeted(px);
  for (let i = 0; i < 12; i++) {
    c.write(`d${i} LOGIN down down-pw\r\n`);
    expect((await c.until(`d${i}`)).at(-1)).toBe(`d${i} NO [UNAVAILABLE] Account is temporarily unavailable.`);
    expect(limits().userIpCount('imap', '127.0.0.5', 'down')).toBe(0);
  }
  c.close();
  await settled(() => limits().userIpKeys === 0);
  expect(limits().userIpKeys).toBe(0);
});

test('1000 connect, login, logout cycles leave nothing counted', async () => {
  const cycle = async (i: number): Promise<void> => {
    const { c, reply } = await login('alice', 'alice-pw', `127.0.0.${20 + (i % 5)}`);
    expect(reply).toMatch(/^a OK /);
    if (i % 2 === 0) {
      c.write('z LOGOUT\r\n');
      await c.until('z');
    }
    c.close();
  };
  for (let i = 0; i < 1000; i += 25) await Promise.all(Array.from({ length: 25 }, (_, j) => cycle(i + j)));
  await settled(() => limits().userIpKeys === 0 && px.portier.sessionCount === 0);
  expect(px.portier.sessionCount).toBe(0);
  expect(limits().userIpKeys).toBe(0);
  expect(limits().preauthCount).toBe(0);
}, 120_000);
