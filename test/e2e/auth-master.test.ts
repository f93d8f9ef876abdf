/**
 * Client-side master logins through portier to a real Dovecot: `user*master` and SASL PLAIN
 * with an authorization id are checked against the master passdb, then go upstream as the
 * same master login (authzid = user, authcid = master). The three refusals — a wrong master
 * password, the user's own password offered as a master password, a non-master acting for
 * someone else — are answered by portier and never reach the backend.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { imapCommand, type ImapExchange } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: DovecotBackend;
let px: RunningPortier;

const config = testConfig(['imap'], {
  settings: { auth_master_user_separator: "'*'", auth_mechanisms: 'plain login cram-md5', log_level: 'debug' },
  passdb:
    passdbEntry('passwd-file', { name: 'masters', master: 'yes', args: 'scheme=PLAIN {{dir}}/masters' }) +
    passdbEntry('passwd-file', { name: 'users', args: 'scheme=PLAIN {{dir}}/users' }),
});

const plain = (authzid: string, authcid: string, password: string): string =>
  Buffer.from(`${authzid}\0${authcid}\0${password}`, 'utf8').toString('base64');

/** `line` (tag `a`) on a new connection, up to its tagged reply. */
const send = (line: string): Promise<ImapExchange> => imapCommand(px, line, { timeoutMs: 10_000 });

beforeAll(async () => {
  backend = await startDovecot({
    address: '127.0.0.2',
    protocols: ['imap'],
    users: [{ user: 'alice', password: 'alice-pw' }, { user: 'mallory', password: 'mallory-pw' }],
    masterUsers: [{ user: 'admin', password: 'admin-secret' }],
    trustedNetworks: ['127.0.0.0/8'],
  });
  const to = `proxy=y host=${backend.host} port=${backend.ports.imap}`;
  px = await startPortier(config, {
    masters: 'admin:admin-secret\n',
    users: `alice:alice-pw::::::${to}\nmallory:mallory-pw::::::${to}\n`,
  });
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

describe('master logins', () => {
  test('user*master with the master password: the user\'s mailbox, as a master login upstream', async () => {
    const from = await backend.logSize();
    const { reply, c } = await send('a LOGIN alice*admin admin-secret');
    expect(reply).toMatch(/^a OK \[CAPABILITY /);
    c.write('b SELECT INBOX\r\n');
    expect((await c.until('b')).at(-1)).toMatch(/^b OK \[READ-WRITE\]/);
    c.close();
    const line = await backend.waitForLog(/Login: user=<alice>/, 5000, from);
    expect(line).toMatch(/method=PLAIN/);
    await backend.waitForLog(/Master user logging in as alice/i, 5000, from);
  });

  test('SASL PLAIN with an authorization id works the same', async () => {
    const from = await backend.logSize();
    const { reply, c } = await send(`a AUTHENTICATE PLAIN ${plain('alice', 'admin', 'admin-secret')}`);
    c.close();
    expect(reply).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/Master user logging in as alice/i, 5000, from);
  });

  test('the three refusals are answered at portier and never reach the backend', async () => {
    const from = await backend.logSize();
    const seen = px.logs().length;
    const attempts: [string, string, RegExp][] = [
      ['wrong master password', 'a LOGIN alice*admin wrong-secret', /master user admin: wrong password/],
      ['wrong master password (PLAIN authzid)', `a AUTHENTICATE PLAIN ${plain('alice', 'admin', 'wrong-secret')}`, /master user admin: wrong password/],
      ["the user's own password as the master password", 'a LOGIN alice*admin alice-pw', /master user admin: wrong password/],
      ['a user naming herself as master', 'a LOGIN alice*alice alice-pw', /master user alice: not a master user/],
      ['a non-master acting for someone else (PLAIN authzid)', `a AUTHENTICATE PLAIN ${plain('alice', 'mallory', 'mallory-pw')}`, /master user mallory: not a master user/],
      ['a non-master acting for someone else (separator)', 'a LOGIN alice*mallory mallory-pw', /master user mallory: not a master user/],
      ['master login for an unknown user', 'a LOGIN nobody*admin admin-secret', /master login for unknown user nobody/],
    ];
    for (const [label, line, why] of attempts) {
      const { reply, c } = await send(line);
      c.close();
      expect(reply, label).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
      const logged = px.logs().slice(seen).find((l) => l.msg === 'login refused: failed' && why.test(String(l['why'])));
      expect(logged, label).toBeDefined();
    }
    // Nothing was passed on: the backend saw no login at all for these.
    await new Promise((r) => setTimeout(r, 300));
    const log = (await backend.readLog()).slice(from);
    expect(log).not.toMatch(/Login: |auth failed|Aborted login/);
    expect(px.logText()).not.toMatch(/admin-secret|wrong-secret|mallory-pw/);
  });

  test('plain logins of the same users still work, and a master cannot log in as itself without a target', async () => {
    const ok = await send('a LOGIN mallory mallory-pw');
    ok.c.close();
    expect(ok.reply).toMatch(/^a OK /);
    const self = await send('a LOGIN admin admin-secret');
    self.c.close();
    expect(self.reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
  });
});
