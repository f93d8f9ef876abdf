/**
 * A scripted IMAP/POP3/LMTP backend that answers at once: every LOGIN/USER/PASS/AUTHENTICATE
 * succeeds, SELECT shows one message, FETCH serves a fixed large message, APPEND and LMTP DATA
 * are read and thrown away. It measures the proxy in front of it, not a mail store.
 *
 *   node dist-bench/bench/instant-backend.js --host 127.0.0.3 --imap 10143 --pop3 10110 --lmtp 10024 --message-size 10M
 *
 * With --imaps/--pop3s (and --cert/--key, repeatable: an ECDSA and an RSA pair) it is also
 * the bare node:tls server that IMAPS logins through a proxy are compared with.
 *
 * Prints one JSON line {"ready":true,...} on stdout when it listens; stops on SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { parseArgs } from 'node:util';
import { parseSize } from './lib/options.js';
import { rfc822Message } from './lib/protocols.js';

const MAX_LINE = 64 * 1024;
const CAPS = 'IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN';

/** Line reader with IMAP literals (RFC 9051 section 4.3) and an SMTP DATA mode. */
class Conn {
  readonly sock: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #literal = 0;
  #keepLiteral = false;
  #pending = '';
  #data = false;
  #dataTail = '';
  #onLine: (line: string, c: Conn) => void;
  #onData: (c: Conn) => void;

  constructor(sock: Socket, onLine: (line: string, c: Conn) => void, onData: (c: Conn) => void = () => {}) {
    this.sock = sock;
    this.#onLine = onLine;
    this.#onData = onData;
    sock.setNoDelay(true);
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: Buffer) => this.#feed(d));
  }

  send(text: string | Buffer): void {
    if (!this.sock.destroyed) this.sock.write(text);
  }

  /** After DATA's 354: swallow bytes up to CRLF.CRLF, then call onData. */
  startData(): void {
    this.#data = true;
    this.#dataTail = '\r\n';
  }

  #feed(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    while (this.#buf.length > 0 && !this.sock.destroyed) {
      if (this.#data) {
        const hay = this.#dataTail + this.#buf.toString('latin1', 0, Math.min(this.#buf.length, 8));
        const small = hay.indexOf('\r\n.\r\n');
        const at = small >= 0 ? small - this.#dataTail.length : this.#buf.indexOf('\r\n.\r\n', 0, 'latin1');
        if (at < 0 && small < 0) {
          this.#dataTail = this.#buf.toString('latin1', Math.max(0, this.#buf.length - 4));
          this.#buf = Buffer.alloc(0);
          return;
        }
        this.#buf = this.#buf.subarray(at + 5);
        this.#data = false;
        this.#onData(this);
        continue;
      }
      if (this.#literal > 0) {
        const take = Math.min(this.#literal, this.#buf.length);
        if (this.#keepLiteral) this.#pending += this.#buf.toString('latin1', 0, take);
        this.#literal -= take;
        this.#buf = this.#buf.subarray(take);
        continue;
      }
      const lf = this.#buf.indexOf(10);
      if (lf < 0) {
        if (this.#buf.length > MAX_LINE) this.sock.destroy();
        return;
      }
      const line = this.#buf.toString('latin1', 0, lf > 0 && this.#buf[lf - 1] === 13 ? lf - 1 : lf);
      this.#buf = this.#buf.subarray(lf + 1);
      const lit = /\{(\d+)(\+?)\}$/.exec(line);
      if (lit?.[1] !== undefined) {
        this.#pending += line;
        this.#literal = Number(lit[1]);
        this.#keepLiteral = this.#literal <= 4096; // credentials yes, APPEND bodies no
        if (lit[2] !== '+') this.send('+ OK\r\n');
        continue;
      }
      const full = this.#pending + line;
      this.#pending = '';
      this.#onLine(full, this);
    }
  }
}

function imap(message: Buffer): (line: string, c: Conn) => void {
  const head = Buffer.from(`* 1 FETCH (BODY[] {${message.length}}\r\n`, 'latin1');
  let authTag: string | undefined;
  return (line, c) => {
    if (authTag !== undefined) {
      c.send(`${authTag} OK [CAPABILITY ${CAPS}] Logged in\r\n`);
      authTag = undefined;
      return;
    }
    const sp = line.indexOf(' ');
    const tag = sp > 0 ? line.slice(0, sp) : line;
    const rest = sp > 0 ? line.slice(sp + 1) : '';
    const cmd = (/^\S+/.exec(rest)?.[0] ?? '').toUpperCase();
    switch (cmd) {
      case 'LOGIN':
        c.send(`${tag} OK [CAPABILITY ${CAPS}] Logged in\r\n`);
        return;
      case 'AUTHENTICATE':
        if (/^AUTHENTICATE\s+\S+\s+\S+/i.test(rest)) c.send(`${tag} OK [CAPABILITY ${CAPS}] Logged in\r\n`);
        else {
          authTag = tag;
          c.send('+ \r\n');
        }
        return;
      case 'CAPABILITY':
        c.send(`* CAPABILITY ${CAPS}\r\n${tag} OK Capability completed.\r\n`);
        return;
      case 'ID':
        c.send(`* ID NIL\r\n${tag} OK ID completed.\r\n`);
        return;
      case 'NOOP':
      case 'CHECK':
      case 'ENABLE':
        c.send(`${tag} OK ${cmd} completed.\r\n`);
        return;
      case 'SELECT':
      case 'EXAMINE':
        c.send('* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* 1 EXISTS\r\n* 0 RECENT\r\n' +
          `* OK [UIDVALIDITY 1] UIDs valid\r\n* OK [UIDNEXT 2] Predicted next UID\r\n${tag} OK [READ-WRITE] Select completed.\r\n`);
        return;
      case 'FETCH':
      case 'UID':
        c.send(head);
        c.send(message);
        c.send(`)\r\n${tag} OK Fetch completed.\r\n`);
        return;
      case 'APPEND':
        c.send(`${tag} OK [APPENDUID 1 1] Append completed.\r\n`);
        return;
      case 'LOGOUT':
        c.send(`* BYE Logging out\r\n${tag} OK Logout completed.\r\n`);
        c.sock.end();
        return;
      default:
        c.send(`${tag} BAD Unknown command.\r\n`);
    }
  };
}

/** `stuffed` is the message dot-stuffed for RETR (RFC 1939 section 3), built once. */
function pop3(message: Buffer, stuffed: Buffer): (line: string, c: Conn) => void {
  let inAuth = false;
  return (line, c) => {
    if (inAuth) {
      inAuth = false;
      c.send('+OK Logged in.\r\n');
      return;
    }
    const cmd = (/^\S+/.exec(line)?.[0] ?? '').toUpperCase();
    switch (cmd) {
      case 'CAPA':
        c.send('+OK\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n');
        return;
      case 'AUTH':
        if (/^AUTH\s+\S+\s+\S+/i.test(line)) c.send('+OK Logged in.\r\n');
        else {
          inAuth = true;
          c.send('+ \r\n');
        }
        return;
      case 'USER':
      case 'NOOP':
      case 'XCLIENT':
        c.send('+OK\r\n');
        return;
      case 'PASS':
        c.send('+OK Logged in.\r\n');
        return;
      case 'STAT':
        c.send(`+OK 1 ${message.length}\r\n`);
        return;
      case 'RETR':
        c.send(`+OK ${message.length} octets\r\n`);
        c.send(stuffed);
        c.send('.\r\n');
        return;
      case 'QUIT':
        c.send('+OK Logging out.\r\n');
        c.sock.end();
        return;
      default:
        c.send('-ERR Unknown command.\r\n');
    }
  };
}

function lmtp(): { onLine: (line: string, c: Conn) => void; onData: (c: Conn) => void } {
  let rcpts = 0;
  return {
    onLine(line, c) {
      const cmd = (/^\S+/.exec(line)?.[0] ?? '').toUpperCase();
      switch (cmd) {
        case 'LHLO':
          c.send('250-instant\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE\r\n');
          return;
        case 'MAIL':
          rcpts = 0;
          c.send('250 2.1.0 OK\r\n');
          return;
        case 'RCPT':
          rcpts++;
          c.send('250 2.1.5 OK\r\n');
          return;
        case 'DATA':
          if (rcpts === 0) {
            c.send('503 5.5.1 No valid recipients\r\n');
            return;
          }
          c.send('354 OK\r\n');
          c.startData();
          return;
        case 'RSET':
        case 'NOOP':
          rcpts = cmd === 'RSET' ? 0 : rcpts;
          c.send('250 2.0.0 OK\r\n');
          return;
        case 'QUIT':
          c.send('221 2.0.0 Bye\r\n');
          c.sock.end();
          return;
        default:
          c.send('500 5.5.2 Unknown command\r\n');
      }
    },
    onData(c) {
      c.send('250 2.0.0 Saved\r\n'.repeat(Math.max(1, rcpts)));
      rcpts = 0;
    },
  };
}

interface TlsFiles {
  cert: string[];
  key: string[];
}

function listen(host: string, port: number, onConn: (s: Socket) => void, tls?: TlsFiles): Promise<Server> {
  return new Promise((resolve, reject) => {
    const srv = tls === undefined
      ? createServer({ noDelay: true }, onConn)
      : createTlsServer({ cert: tls.cert.map((f) => readFileSync(f)), key: tls.key.map((f) => readFileSync(f)), minVersion: 'TLSv1.2' }, onConn);
    srv.once('error', reject);
    srv.listen({ host, port, backlog: 4096 }, () => resolve(srv));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.3' },
      imap: { type: 'string' },
      pop3: { type: 'string' },
      lmtp: { type: 'string' },
      imaps: { type: 'string' },
      pop3s: { type: 'string' },
      cert: { type: 'string', multiple: true },
      key: { type: 'string', multiple: true },
      'message-size': { type: 'string', default: '10M' },
    },
  });
  const tls: TlsFiles = { cert: values.cert ?? [], key: values.key ?? [] };
  if ((values.imaps !== undefined || values.pop3s !== undefined) && (tls.cert.length === 0 || tls.cert.length !== tls.key.length)) {
    throw new Error('--imaps/--pop3s need --cert and --key (as many of each)');
  }
  const message = rfc822Message(parseSize(values['message-size'] ?? '10M'));
  const stuffed = Buffer.from(message.toString('latin1').replace(/^\./gm, '..'), 'latin1');
  const host = values.host ?? '127.0.0.3';
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  const port = (s: Server): number => {
    const a = s.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  };
  const imapConn = (sock: Socket): void => {
    new Conn(sock, imap(message));
    sock.write('* OK [CAPABILITY ' + CAPS + '] instant backend ready.\r\n');
  };
  const pop3Conn = (sock: Socket): void => {
    new Conn(sock, pop3(message, stuffed));
    sock.write('+OK instant backend ready.\r\n');
  };
  const kinds = [['imap', values.imap, imapConn, false], ['imaps', values.imaps, imapConn, true], ['pop3', values.pop3, pop3Conn, false], ['pop3s', values.pop3s, pop3Conn, true]] as const;
  for (const [name, text, onConn, secure] of kinds) {
    if (text === undefined) continue;
    const s = await listen(host, Number(text), onConn, secure ? tls : undefined);
    servers.push(s);
    ports[name] = port(s);
  }
  if (values.lmtp !== undefined) {
    const s = await listen(host, Number(values.lmtp), (sock) => {
      const l = lmtp();
      new Conn(sock, l.onLine, l.onData);
      sock.write('220 instant LMTP ready\r\n');
    });
    servers.push(s);
    ports['lmtp'] = port(s);
  }
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, host, ports, messageSize: message.length })}\n`);
  const stop = (): void => {
    for (const s of servers) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

void main().catch((err: unknown) => {
  process.stderr.write(`instant-backend: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
