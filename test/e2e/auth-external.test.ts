/**
 * SASL EXTERNAL (RFC 4422 App. A) over implicit TLS with a client certificate from the test
 * CA: offered only with a verified certificate, the certificate's name is the user, the
 * passdb gives the fields (no password) and the backend login comes from the passdb's
 * master/pass. An authorization id for someone else, an unknown certificate user, or a user
 * without a backend password are refused.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';
import { CLIENT_IP } from './passdb-fixtures.js';

let backend: DovecotBackend;
let px: RunningPortier;
const certs: Record<string, IssuedCert> = {};

/** One TLS connection, optionally with a client certificate; returns a line reader. */
async function tlsClient(cert?: string): Promise<{ socket: TLSSocket; line: () => Promise<string>; send: (s: string) => void }> {
  const c = cert === undefined ? undefined : certs[cert];
  const server = certs['server'];
  if (server === undefined) throw new Error('no server cert');
  const raw = await new Promise<Socket>((resolve, reject) => {
    const r = netConnect({ host: '127.0.0.1', port: px.port('imaps'), localAddress: CLIENT_IP }, () => resolve(r));
    r.once('error', reject);
  });
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect(
      {
        socket: raw,
        ca: readFileSync(server.caFile),
        servername: 'mail.test',
        ...(c !== undefined ? { cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) } : {}),
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
  let buf = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    waiters.splice(0).forEach((w) => w());
  });
  const line = async (): Promise<string> => {
    const until = Date.now() + 10_000;
    while (!buf.includes('\r\n')) {
      if (Date.now() > until) throw new Error(`no line: ${buf}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 100);
      });
    }
    const at = buf.indexOf('\r\n');
    const l = buf.slice(0, at);
    buf = buf.slice(at + 2);
    return l;
  };
  return { socket, line, send: (s) => socket.write(s) };
}

async function external(cert: string | undefined, ir = '='): Promise<{ greeting: string; reply: string }> {
  const c = await tlsClient(cert);
  try {
    const greeting = await c.line();
    c.send(`a AUTHENTICATE EXTERNAL ${ir}\r\n`);
    let reply = await c.line();
    while (!reply.startsWith('a ')) reply = await c.line();
    if (reply.startsWith('a OK')) {
      c.send('b SELECT INBOX\r\n');
      let l = await c.line();
      while (!l.startsWith('b ')) l = await c.line();
      expect(l).toMatch(/^b OK \[READ-WRITE\]/);
    }
    return { greeting, reply };
  } finally {
    c.socket.destroy();
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
    `
protocols: imap
listen: 127.0.0.1
ssl: yes
ssl_cert: ${server.certFile}
ssl_key: ${server.keyFile}
ssl_ca: ${server.caFile}
ssl_verify_client_cert: yes
auth_ssl_username_from_cert: yes
auth_mechanisms: plain external
auth_failure_delay: 0
log_level: debug
service:
  imap-login:
    inet_listener:
      imap: { port: 0 }
      imaps: { port: {{port}}, ssl: yes }
passdb:
  - driver: passwd-file
    args: scheme=PLAIN {{dir}}/users
`,
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
