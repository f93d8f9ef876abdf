/**
 * POP3 APOP (RFC 1939 §7) through portier to a real Dovecot backend, with python3 poplib's
 * apop(): offered only when auth_mechanisms lists `apop` (the greeting then carries the
 * timestamp), checked against the passdb's cleartext password, which is also the password
 * portier logs in to the backend with.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { poplib, type PoplibResult } from '../support/python-clients.js';

let backend: DovecotBackend;
let px: RunningPortier;

/** python3 poplib's apop() from 127.0.0.5 (`wrong`: a digest of something else than the timestamp). */
function apop(user: string, pass: string, mode: 'right' | 'wrong' = 'right'): Promise<PoplibResult> {
  return poplib({ port: px.port('pop3'), user, password: pass, mode: mode === 'wrong' ? 'apop-wrong-digest' : 'apop' });
}

beforeAll(async () => {
  backend = await startDovecot({ address: '127.0.0.2', users: [{ user: 'alice', password: 'alice-pw' }, { user: 'hashed', password: 'hashed-pw' }], trustedNetworks: ['127.0.0.0/8'] });
  await backend.deliver('alice', 'Subject: apop\r\n\r\nbody\r\n');
  const to = `proxy=y host=${backend.host} port=${backend.ports.pop3}`;
  px = await startPortier(
    testConfig(['pop3'], { settings: { auth_mechanisms: 'plain login apop' }, passdb: passdbEntry('passwd-file', { args: '{{dir}}/users' }) }),
    {
      users: [
        `alice:{PLAIN}alice-pw::::::${to}`,
        // A hashed password cannot answer APOP: only USER/PASS or PLAIN work for this user.
        `hashed:{SHA256-CRYPT}$5$saltsalt$Q8m5F4g0yQq4u7cD3Pj1v2nN0w6b7dV9xJ2kR1hT5yA::::::${to}`,
        '',
      ].join('\n'),
    },
  );
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

test('the greeting carries an APOP timestamp; APOP logs in at the backend with the cleartext password', async () => {
  const r = await apop('alice', 'alice-pw');
  expect(r.error).toBeUndefined();
  expect(r.welcome).toMatch(/^\+OK portier ready\. <[0-9a-f]+\.\d+@[^>]+>$/);
  expect(r.reply).toBe('+OK Logged in.');
  expect(r.stat?.[0]).toBe(1);
  const started = await px.waitForLog((l) => l.msg.startsWith('Started proxying') && l.user === 'alice');
  expect(started.backend).toBe(`${backend.host}:${backend.ports.pop3}`);
});

test('a wrong digest and a user without a cleartext password are refused like any failed login', async () => {
  expect((await apop('alice', 'wrong-pw')).error).toBe('-ERR [AUTH] Authentication failed.');
  expect((await apop('alice', 'alice-pw', 'wrong')).error).toBe('-ERR [AUTH] Authentication failed.');
  expect((await apop('hashed', 'hashed-pw')).error).toBe('-ERR [AUTH] Authentication failed.');
  expect((await apop('nobody', 'x')).error).toBe('-ERR [AUTH] Authentication failed.');
  const why = await px.waitForLog((l) => l.user === 'hashed' && l.msg.startsWith('login refused'));
  expect(why.why).toMatch(/APOP/);
});

test('two greetings never share a timestamp; malformed APOP is a bad command', async () => {
  const a = await greeted(px, 'pop3');
  const b = await greeted(px, 'pop3');
  expect(a.greeting).not.toBe(b.greeting);
  a.write('APOP alice not-a-digest\r\n');
  expect(await a.line()).toBe('-ERR Invalid APOP parameters.');
  a.close();
  b.close();
});
