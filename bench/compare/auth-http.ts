/**
 * The minimal auth_http endpoint nginx's mail proxy needs (nginx docs, ngx_mail_auth_http
 * module): checks the password like the other proxies' passdb would (userN/passN) and names
 * the backend: userN → the Dovecot backend, iuserN → the instant backend.
 *
 *   node dist-bench/bench/compare/auth-http.js --host 127.0.2.10 --port 8080
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { ADDR, PORTS, USERS } from './setup.js';

const BACKEND_PORT: Record<string, number> = { imap: PORTS.imap, pop3: PORTS.pop3, smtp: 25 };

function main(): void {
  const { values } = parseArgs({ options: { host: { type: 'string', default: ADDR.authHttp }, port: { type: 'string', default: String(PORTS.authHttp) } } });
  const srv = createServer((req, res) => {
    const user = String(req.headers['auth-user'] ?? '');
    const pass = decodeURIComponent(String(req.headers['auth-pass'] ?? ''));
    const proto = String(req.headers['auth-protocol'] ?? 'imap');
    const m = /^(i?)user(\d+)$/.exec(decodeURIComponent(user));
    const n = Number(m?.[2] ?? 0);
    if (m === null || n < 1 || n > USERS || pass !== `pass${n}`) {
      res.writeHead(200, { 'Auth-Status': 'Invalid login or password', 'Auth-Wait': '0' });
      res.end();
      return;
    }
    res.writeHead(200, {
      'Auth-Status': 'OK',
      'Auth-Server': m[1] === 'i' ? ADDR.instant : ADDR.dovecotBackend,
      'Auth-Port': String(BACKEND_PORT[proto] ?? PORTS.imap),
    });
    res.end();
  });
  srv.listen({ host: values.host, port: Number(values.port), backlog: 4096 }, () => {
    process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  });
  const stop = (): void => {
    srv.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
