// R28 scenario, run by test/e2e/dead-peer.test.ts inside a private network namespace
// (`unshare -n`), so black-holing loopback addresses there touches nothing else on the host.
// A fake IMAP backend on 127.0.0.2, the real `portier serve` (tcp_keepalive: 1s), one client
// from 127.0.0.5 logged in and proxied; then one leg's peer address is black-holed (packets
// silently dropped, no FIN, no RST) and we time how long portier takes to notice and close the
// other leg. Prints one JSON line. Usage: node dead-peer-scenario.mjs BIN DIR backend|client
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

const [bin, dir, mode] = process.argv.slice(2);
const IMAP_PORT = 10143;
const deadline = setTimeout(() => finish({ error: 'scenario timed out' }), 60_000);

let portier;
function finish(result) {
  clearTimeout(deadline);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (portier && portier.exitCode === null) portier.kill('SIGKILL');
  process.exit(0);
}

const backendConns = [];
const backend = createServer((s) => {
  const conn = { socket: s, closedAt: undefined };
  backendConns.push(conn);
  s.on('error', () => {});
  s.on('close', () => (conn.closedAt = Date.now()));
  s.write('* OK [CAPABILITY IMAP4rev1 ID AUTH=PLAIN] fake ready\r\n');
  let buf = '';
  s.on('data', (d) => {
    buf += d.toString('latin1');
    for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
      const line = buf.slice(0, lf).replace(/\r$/, '');
      buf = buf.slice(lf + 1);
      const [tag, cmd] = line.split(' ');
      if (cmd?.toUpperCase() === 'ID') s.write(`* ID NIL\r\n${tag} OK ID done\r\n`);
      else s.write(`${tag} OK [CAPABILITY IMAP4rev1] done\r\n`);
    }
  });
});
await new Promise((r) => backend.listen(0, '127.0.0.2', r));

writeFileSync(join(dir, 'users'), `alice:{PLAIN}alice-pw::::::proxy=y host=127.0.0.2 port=${backend.address().port}\n`);
const config = join(dir, 'portier.yaml');
writeFileSync(
  config,
  `protocols: imap
listen: 127.0.0.1
ssl: no
workers: 1
disable_plaintext_auth: no
auth_failure_delay: 0
admin_socket: ${dir}/admin.sock
tcp_keepalive: 1s
login_proxy_idle_timeout: 10m
service:
  imap-login:
    inet_listener:
      imap: { port: ${IMAP_PORT} }
      imaps: { port: 0 }
passdb:
  - driver: passwd-file
    args: scheme=PLAIN ${dir}/users
`,
);
let log = '';
portier = spawn(process.execPath, [bin, 'serve', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
portier.stdout.on('data', (d) => (log += d));
portier.stderr.on('data', (d) => (log += d));

function client() {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: IMAP_PORT, localAddress: '127.0.0.5' }, () => resolve(s));
    s.once('error', reject);
  });
}

let c;
for (let i = 0; i < 100 && c === undefined; i++) {
  c = await client().catch(() => new Promise((r) => setTimeout(() => r(undefined), 100)));
}
if (c === undefined) finish({ error: 'portier did not listen', log });
c.on('error', () => {});
let received = '';
let clientClosedAt;
c.on('data', (d) => (received += d.toString('latin1')));
c.on('close', () => (clientClosedAt = Date.now()));
c.write('a LOGIN alice alice-pw\r\n');
for (let i = 0; i < 100 && !/a OK/.test(received); i++) await new Promise((r) => setTimeout(r, 50));
if (!/a OK/.test(received)) finish({ error: 'login failed', received, log });

const dead = mode === 'backend' ? '127.0.0.2' : '127.0.0.5';
execFileSync('ip', ['route', 'add', 'blackhole', `${dead}/32`, 'table', 'local']);
const t0 = Date.now();
const conn = backendConns.at(-1);
for (let i = 0; i < 600; i++) {
  if (mode === 'backend' ? clientClosedAt !== undefined : conn?.closedAt !== undefined) break;
  await new Promise((r) => setTimeout(r, 50));
}
const noticedAfterMs = mode === 'backend' ? (clientClosedAt ?? NaN) - t0 : (conn?.closedAt ?? NaN) - t0;
execFileSync('ip', ['route', 'del', 'blackhole', `${dead}/32`, 'table', 'local']);
// portier is still serving: a fresh login works.
const again = await client();
let second = '';
again.on('data', (d) => (second += d.toString('latin1')));
again.write('b LOGIN alice alice-pw\r\n');
for (let i = 0; i < 100 && !/b OK/.test(second); i++) await new Promise((r) => setTimeout(r, 50));
again.destroy();
await new Promise((r) => setTimeout(r, 300));
finish({ mode, noticedAfterMs, clientGotBye: received.includes('* BYE'), stillServing: /b OK/.test(second), portierAlive: portier.exitCode === null, log });
