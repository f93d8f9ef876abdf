/**
 * SASL EXTERNAL (RFC 4422 App. A) over implicit TLS with a client certificate from the test
 * CA: offered only with a verified certificate, the certificate's name is the user, the
 * passdb gives the fields (no password) and the backend login comes from the passdb's
 * master/pass. An authorization id for someone else, an unknown certificate user, or a user
 * without a backend password are refused.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted, imapCommandOn } from '../support/clients.js';
import { LOOPBACK_SETTINGS, testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';

let backend: DovecotBackend;
let px: RunningPortier;
const certs: Record<string, IssuedCert> = {};

/** AUTHENTICATE EXTERNAL over implicit TLS, with the named client certificate or none; an OK login then SELECTs INBOX. */
async function external(cert: string | undefined, ir = '='): Promise<{ greeting: string; reply: string }> {
  const c = cert === undefined ? undefined : certs[cert];
  const server = certs['server'];
  if (server === undefined) throw new Error('no server cert');
  const client = await greeted(px.port('imaps'), 'imap', {
    tls: {
      ca: readFileSync(server.caFile),
      servername: 'mail.test',
      ...(c !== undefined ? { cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) } : {}),
    },
    greetingTimeoutMs: 10_000,
  });
  try {
    const { reply } = await imapCommandOn(client, `a AUTHENTICATE EXTERNAL ${ir}`, 10_000);
    if (reply.startsWith('a OK')) {
      expect((await imapCommandOn(client, 'b SELECT INBOX', 10_000)).reply).toMatch(/^b OK \[READ-WRITE\]/);
    }
    return { greeting: client.greeting, reply };
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  const ca = await sharedTestCa();
  certs['server'] = await ca.issue('mail.test', { sans: ['mail.test', '127.0.0.1'] });
  for (const name of ['alice', 'bob', 'mallory']) certs[name] = await ca.issue(name);
  backend = await startDovecot({
    address: '127.0.0.2',
    protocols: ['imap'],
    users: [{ user: 'alice', password: 'unknown-to-the-client' }, { user: 'bob', password: 'bob-pw' }],
    masterUsers: [{ user: 'pmaster', password: 'pmaster-secret' }],
  });
  const to = `proxy=y host=${backend.host} port=${backend.ports.imap}`;
  const server = certs['server'];
  if (server === undefined) throw new Error('no server cert');
  px = await startPortier(
    testConfig(['imap'], {
      base: LOOPBACK_SETTINGS,
      settings: {
        ssl: 'yes',
        ssl_cert: server.certFile,
        ssl_key: server.keyFile,
        ssl_ca: server.caFile,
        ssl_verify_client_cert: 'yes',
        auth_ssl_username_from_cert: 'yes',
        auth_mechanisms: 'plain external',
        auth_failure_delay: 0,
        log_level: 'debug',
      },
      ports: { imap: 0, imaps: '{{port}}' },
    }),
    { users: `alice:::::::${to} nopassword=y master=pmaster pass=pmaster-secret\nbob:{PLAIN}bob-pw::::::${to}\n` },
  );
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

describe('SASL EXTERNAL', () => {
  test("the certificate's user logs in; upstream it is the passdb's master login", async () => {
    const from = await backend.logSize();
    const r = await external('alice');
    expect(r.greeting).toMatch(/AUTH=EXTERNAL/);
    expect(r.reply).toMatch(/^a OK \[CAPABILITY /);
    await backend.waitForLog(/Master user logging in as alice/i, 5000, from);
  });

  test('an authorization id equal to the certificate user is fine; another one is refused', async () => {
    expect((await external('alice', Buffer.from('alice').toString('base64'))).reply).toMatch(/^a OK /);
    expect((await external('alice', Buffer.from('bob').toString('base64'))).reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
  });

  test('a certificate user the passdb does not know fails; one without a backend password fails temporarily', async () => {
    expect((await external('mallory')).reply).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    expect((await external('bob')).reply).toMatch(/^a NO \[UNAVAILABLE\] /);
    await px.waitForLog((l) => l.msg.startsWith('cannot proxy this login') && l['mech'] === 'EXTERNAL');
  });

  test('without a client certificate EXTERNAL is not offered', async () => {
    const r = await external(undefined);
    expect(r.greeting).not.toMatch(/AUTH=EXTERNAL/);
    expect(r.reply).toBe('a NO Unsupported authentication mechanism.');
  });
});
