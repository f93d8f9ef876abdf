/**
 * POP3 APOP (RFC 1939 §7) through portier to a real Dovecot backend, with python3 poplib's
 * apop(): offered only when auth_mechanisms lists `apop` (the greeting then carries the
 * timestamp), checked against the passdb's cleartext password, which is also the password
 * portier logs in to the backend with.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

let backend: DovecotBackend;
let px: RunningPortier;

const APOP = String.raw`
import hashlib, json, poplib, socket, sys
host, port, user, pw, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
class P(poplib.POP3):
    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=('127.0.0.5', 0))
out = {}
try:
    p = P(host, port, timeout=10)
    out['welcome'] = p.getwelcome().decode()
    if mode == 'wrong':
        out['reply'] = p._shortcmd('APOP %s %s' % (user, hashlib.md5(b'not the timestamp').hexdigest())).decode()
    else:
        out['reply'] = p.apop(user, pw).decode()
        out['stat'] = list(p.stat())
        out['quit'] = p.quit().decode()
except poplib.error_proto as e:
    out['error'] = e.args[0].decode('latin1') if isinstance(e.args[0], bytes) else str(e)
print(json.dumps(out))
`;

function apop(user: string, pass: string, mode: 'right' | 'wrong' = 'right'): Promise<{ welcome?: string; reply?: string; stat?: number[]; error?: string }> {
  return new Promise((resolve, reject) => {
    execFile('python3', ['-c', APOP, '127.0.0.1', String(px.port('pop3')), user, pass, mode], { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`poplib failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { welcome?: string; reply?: string; stat?: number[]; error?: string });
    });
  });
}

beforeAll(async () => {
  backend = await startDovecot({ address: '127.0.0.2', users: [{ user: 'alice', password: 'alice-pw' }, { user: 'hashed', password: 'hashed-pw' }], trustedNetworks: ['127.0.0.0/8'] });
  await backend.deliver('alice', 'Subject: apop\r\n\r\nbody\r\n');
  const to = `proxy=y host=${backend.host} port=${backend.ports.pop3}`;
  px = await startPortier(
    `
protocols: pop3
listen: 127.0.0.1
ssl: no
disable_plaintext_auth: no
auth_failure_delay: 0
auth_mechanisms: plain login apop
service:
  pop3-login:
    inet_listener:
      pop3: { port: {{port}} }
      pop3s: { port: 0 }
passdb:
  - driver: passwd-file
    args: {{dir}}/users
`,
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
  const a = await LineClient.connect(px.port('pop3'), { localAddress: '127.0.0.5' });
  const b = await LineClient.connect(px.port('pop3'), { localAddress: '127.0.0.5' });
  const [ga, gb] = [await a.line(), await b.line()];
  expect(ga).not.toBe(gb);
  a.write('APOP alice not-a-digest\r\n');
  expect(await a.line()).toBe('-ERR Invalid APOP parameters.');
  a.close();
  b.close();
});
