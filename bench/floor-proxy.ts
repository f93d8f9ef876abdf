/**
 * The Node floor: the least an IMAP/POP3 login proxy built on `node:net`/`node:tls` can do,
 * so the compare run (`--with-floor`) can show how much of portier's cost is Node's own.
 * It is a floor, not a product: no passdb, no limits, no STARTTLS, no literals, no
 * AUTHENTICATE, no logging, no metrics, no LMTP. Do not put it in front of anything real.
 *
 * Per session: accept (plain, or implicit TLS with an ECDSA and an RSA pair in one `node:tls`
 * context, like the instant backend's IMAPS port), greet, read one `LOGIN` line (POP3: `USER`
 * then `PASS`), route by a fixed rule (`userN` → the Dovecot backend, `iuserN` → the instant
 * backend; compare/setup.ts ADDR/PORTS), connect, read the backend's greeting, send
 * `ID ("x-originating-ip" ... "x-connected-port" ...)` and `LOGIN` in one write (POP3: `USER`
 * and `PASS` in one write, no XCLIENT), wait for the tagged reply, relay it under the
 * client's tag, then `client.pipe(backend); backend.pipe(client)`. The ID is accepted by
 * Dovecot because compare/setup.ts puts 127.0.0.0/8 in the backend's login_trusted_networks.
 * The user's arguments are forwarded as the client wrote them (atoms or quoted strings).
 *
 * `--workers N` (default: one per core) forks N processes with node:cluster sharing the
 * listeners, SCHED_NONE (the kernel spreads connections), as portier's `workers: auto` does.
 *
 *   node dist-bench/bench/floor-proxy.js [--host 127.0.2.11] [--imap 143] [--pop3 110]
 *     [--imaps 993 --pop3s 995 --cert ecdsa.crt --key ecdsa.key --cert rsa.crt --key rsa.key]
 *     [--dovecot 127.0.2.2] [--instant 127.0.2.3] [--backend-imap 143] [--backend-pop3 110] [--workers N]
 *
 * Prints one JSON line {"ready":true,...} on stdout when every worker listens; stops on SIGTERM/SIGINT.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { connect, createServer, type NetConnectOpts, type Server, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import { parseArgs } from 'node:util';
import { ADDR, PORTS } from './compare/setup.js';

const MAX_LINE = 8192;
const PRELOGIN_MS = 60_000;
const { values: v } = parseArgs({
  options: {
    host: { type: 'string', default: ADDR.floor },
    imap: { type: 'string', default: String(PORTS.imap) },
    pop3: { type: 'string', default: String(PORTS.pop3) },
    imaps: { type: 'string', default: String(PORTS.imaps) },
    pop3s: { type: 'string', default: String(PORTS.pop3s) },
    cert: { type: 'string', multiple: true, default: [] },
    key: { type: 'string', multiple: true, default: [] },
    dovecot: { type: 'string', default: ADDR.dovecotBackend },
    instant: { type: 'string', default: ADDR.instant },
    'backend-imap': { type: 'string', default: String(PORTS.imap) },
    'backend-pop3': { type: 'string', default: String(PORTS.pop3) },
    workers: { type: 'string', default: String(availableParallelism()) },
  },
});

/** Line reader: `hold()` stops handing out lines (bytes still buffer), `rest()` detaches and returns what is buffered. */
interface Reader {
  hold(): void;
  rest(): Buffer;
}

function reader(sock: Socket, onLine: (line: string) => void): Reader {
  let buf: Buffer = Buffer.alloc(0);
  let active = true;
  const onData = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    let lf: number;
    while (active && (lf = buf.indexOf(10)) >= 0) {
      const line = buf.toString('latin1', 0, lf > 0 && buf[lf - 1] === 13 ? lf - 1 : lf);
      buf = buf.subarray(lf + 1);
      onLine(line);
    }
    if (active && buf.length > MAX_LINE) sock.destroy();
  };
  sock.on('data', onData);
  return {
    hold: () => void (active = false),
    rest: () => {
      active = false;
      sock.off('data', onData);
      return buf;
    },
  };
}

/** Half-close towards a peer that is still there, and make sure it goes away even if it never answers. */
function finish(s: Socket): void {
  if (s.destroyed) return;
  s.end();
  setTimeout(() => s.destroy(), 5000).unref();
}

/** The fixed rule: userN → Dovecot backend, iuserN → instant backend, anyone else refused. */
function route(user: string): string | undefined {
  if (/^iuser\d+$/.test(user)) return v.instant;
  if (/^user\d+$/.test(user)) return v.dovecot;
  return undefined;
}

/**
 * Dial the backend for `client`; `onLine` sees its lines until `splice`. Until then a backend
 * that goes away takes the client with it; after, the client is half-closed after the last byte.
 */
function dial(client: Socket, cr: Reader, host: string, port: number, onLine: (line: string) => void): { backend: Socket; splice(): void } {
  // The four options Node's Socket constructor adds to its copy, given up front so the copy keeps
  // one hidden class (portier's backend/connect.ts SOCKET_CONSTRUCTOR_DEFAULTS says why).
  const backend = connect({ host, port, noDelay: true, allowHalfOpen: false, emitClose: false, autoDestroy: true, decodeStrings: false } as NetConnectOpts);
  let spliced = false;
  const kill = (): void => {
    backend.destroy();
    client.destroy();
  };
  backend.on('error', kill);
  client.on('error', kill);
  backend.on('close', () => (spliced ? finish(client) : client.destroy()));
  client.on('close', () => finish(backend));
  const br = reader(backend, onLine);
  return {
    backend,
    splice: () => {
      spliced = true;
      client.setTimeout(0);
      const fromBackend = br.rest();
      const fromClient = cr.rest();
      if (fromBackend.length > 0) client.write(fromBackend);
      if (fromClient.length > 0) backend.write(fromClient);
      client.pipe(backend);
      backend.pipe(client);
    },
  };
}

function accept(client: Socket): void {
  client.setNoDelay(true);
  client.setTimeout(PRELOGIN_MS, () => client.destroy());
  client.on('error', () => client.destroy());
}

const unquote = (s: string): string => (s.startsWith('"') ? s.slice(1, -1).replace(/\\(.)/g, '$1') : s);
const ASTRING = '("(?:[^"\\\\]|\\\\.)*"|[^\\s"]+)';
const LOGIN = new RegExp(`^(\\S+) LOGIN ${ASTRING} ${ASTRING}$`, 'i');

function imapSession(client: Socket): void {
  accept(client);
  client.write('* OK [CAPABILITY IMAP4rev1 ID] Node floor ready.\r\n');
  const r = reader(client, (line) => {
    const m = LOGIN.exec(line);
    const tag = /^\S+/.exec(line)?.[0] ?? '*';
    if (m === null) {
      if (/^\S+ CAPABILITY$/i.test(line)) client.write(`* CAPABILITY IMAP4rev1 ID\r\n${tag} OK done\r\n`);
      else if (/^\S+ LOGOUT$/i.test(line)) client.end(`* BYE\r\n${tag} OK done\r\n`);
      else client.write(`${tag} BAD LOGIN first\r\n`);
      return;
    }
    const [, , user = '', pass = ''] = m;
    const host = route(unquote(user));
    if (host === undefined) {
      client.write(`${tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n`);
      return;
    }
    r.hold();
    const q = (x: string | number | undefined): string => `"${String(x ?? '')}"`;
    const id = `F1 ID ("x-originating-ip" ${q(client.remoteAddress)} "x-originating-port" ${q(client.remotePort)} ` +
      `"x-connected-ip" ${q(client.localAddress)} "x-connected-port" ${q(client.localPort)})\r\nF2 LOGIN ${user} ${pass}\r\n`;
    let greeted = false;
    const b = dial(client, r, host, Number(v['backend-imap']), (l) => {
      if (!greeted) {
        greeted = true;
        if (l.startsWith('* OK')) b.backend.write(id, 'latin1');
        else b.backend.destroy();
        return;
      }
      if (!l.startsWith('F2 ')) return; // * ID, F1 OK, * CAPABILITY
      client.write(`${tag} ${l.slice(3)}\r\n`, 'latin1');
      if (/^F2 OK/i.test(l)) b.splice();
      else b.backend.destroy();
    });
  });
}

function pop3Session(client: Socket): void {
  accept(client);
  client.write('+OK Node floor ready.\r\n');
  let user: string | undefined;
  const r = reader(client, (line) => {
    const cmd = (/^\S+/.exec(line)?.[0] ?? '').toUpperCase();
    const arg = line.slice(cmd.length + 1);
    if (cmd === 'USER') {
      user = arg;
      client.write('+OK\r\n');
      return;
    }
    if (cmd === 'CAPA') return void client.write('+OK\r\nUSER\r\n.\r\n');
    if (cmd === 'QUIT') return void client.end('+OK\r\n');
    const host = cmd === 'PASS' && user !== undefined ? route(user) : undefined;
    if (host === undefined) return void client.write('-ERR [AUTH] Authentication failed.\r\n');
    r.hold();
    let n = 0;
    const b = dial(client, r, host, Number(v['backend-pop3']), (l) => {
      n++;
      if (n === 1) { // greeting
        if (l.startsWith('+OK')) b.backend.write(`USER ${user ?? ''}\r\nPASS ${arg}\r\n`, 'latin1');
        else b.backend.destroy();
      } else if (n === 2 && !l.startsWith('+OK')) { // USER's reply
        client.write(`${l}\r\n`, 'latin1');
        b.backend.destroy();
      } else if (n === 3) { // PASS's reply
        client.write(`${l}\r\n`, 'latin1');
        if (l.startsWith('+OK')) b.splice();
        else b.backend.destroy();
      }
    });
  });
}

function serve(): Server[] {
  const tls = { cert: v.cert.map((f) => readFileSync(f)), key: v.key.map((f) => readFileSync(f)), minVersion: 'TLSv1.2' as const };
  const plain = (onConn: (s: Socket) => void): Server => createServer({ noDelay: true }, onConn);
  const secure = (onConn: (s: Socket) => void): Server => createTlsServer(tls, onConn);
  const list: [Server, string | undefined][] = [[plain(imapSession), v.imap], [plain(pop3Session), v.pop3]];
  if (tls.cert.length > 0) list.push([secure(imapSession), v.imaps], [secure(pop3Session), v.pop3s]);
  for (const [srv, port] of list) {
    srv.on('error', (err) => {
      process.stderr.write(`floor-proxy: ${v.host}:${port}: ${err.message}\n`);
      process.exit(1);
    });
    srv.listen({ host: v.host, port: Number(port), backlog: 4096 });
  }
  return list.map(([s]) => s);
}

const workers = Math.max(1, Number(v.workers));
const ready = (servers: number): void => {
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, workers, host: v.host, servers })}\n`);
};
if (workers > 1 && cluster.isPrimary) {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const servers = v.cert.length > 0 ? 4 : 2;
  let listening = 0;
  let stopping = false;
  cluster.on('listening', () => {
    if (++listening === workers * servers) ready(servers);
  });
  cluster.on('exit', (w, code, signal) => {
    if (!stopping) process.stderr.write(`floor-proxy: worker ${w.process.pid} exited (${signal ?? code}); stopping\n`);
    stop();
  });
  const stop = (): void => {
    stopping = true;
    const live = Object.values(cluster.workers ?? {});
    if (live.length === 0) process.exit(0);
    for (const w of live) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const servers = serve();
  let up = 0;
  for (const s of servers) s.once('listening', () => (++up === servers.length && cluster.isPrimary ? ready(up) : undefined));
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}
