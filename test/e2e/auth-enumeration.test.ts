/**
 * R15 end to end: over IMAP and POP3, an unknown user and a wrong password get the same reply
 * and cost the same password work (one SHA512-CRYPT verification each, counted in the hash
 * pool of this in-process portier), so neither the text nor the time tells them apart.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { hashPassword, hashWorkStarted } from '../../src/passdb/schemes/index.js';
import { greeted, imapCommandOn } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let px: RunningPortier;

beforeAll(async () => {
  const alice = await hashPassword('SHA512-CRYPT', Buffer.from('alice-pw'));
  px = await startPortier(
    testConfig(['imap', 'pop3'], { settings: { default_pass_scheme: 'SHA512-CRYPT' }, passdb: passdbEntry('passwd-file', { args: '{{dir}}/users' }) }),
    { users: `alice:${alice}::::::proxy=y host=127.0.0.2 port=9\n` },
  );
});

afterAll(async () => {
  await px?.stop();
});

async function imapLogin(user: string, pass: string): Promise<{ reply: string; jobs: number }> {
  const c = await greeted(px, 'imap');
  const before = hashWorkStarted().pool;
  const { reply } = await imapCommandOn(c, `a LOGIN ${user} ${pass}`);
  const jobs = hashWorkStarted().pool - before;
  c.close();
  return { reply, jobs };
}

async function pop3Login(user: string, pass: string): Promise<{ reply: string; jobs: number }> {
  const c = await greeted(px, 'pop3');
  const before = hashWorkStarted().pool;
  c.write(`USER ${user}\r\n`);
  expect(await c.line()).toMatch(/^\+OK/);
  c.write(`PASS ${pass}\r\n`);
  const reply = await c.line();
  const jobs = hashWorkStarted().pool - before;
  c.close();
  return { reply, jobs };
}

test('IMAP LOGIN: unknown user and wrong password, same reply, one verification each', async () => {
  await imapLogin('warmup', 'x'); // the first failure of a process also makes the decoy
  const wrong = await imapLogin('alice', 'wrong');
  const unknown = await imapLogin('nobody', 'wrong');
  expect(wrong).toEqual({ reply: 'a NO [AUTHENTICATIONFAILED] Authentication failed.', jobs: 1 });
  expect(unknown).toEqual(wrong);
});

test('POP3 USER/PASS: the same', async () => {
  const wrong = await pop3Login('alice', 'wrong');
  const unknown = await pop3Login('nobody', 'wrong');
  expect(wrong).toEqual({ reply: '-ERR [AUTH] Authentication failed.', jobs: 1 });
  expect(unknown).toEqual(wrong);
});
