/**
 * A scripted IMAP backend for the failure modes a real server will not produce on demand
 * (odd banners, response codes, untagged lines during login, PREAUTH). Each connection gets
 * the greeting, then `respond(line, conn)` decides the answer to every line it receives.
 * Everything received is recorded per connection.
 */
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeConn {
  readonly socket: Socket;
  /** The peer's address, kept after the socket closes. */
  readonly remoteAddress: string | undefined;
  /** Lines received so far, without CRLF. */
  readonly received: string[];
  write(text: string): void;
}

export interface FakeImapOptions {
  readonly host?: string;
  /** Sent on connect; `null` sends nothing (a backend that never greets). */
  readonly greeting?: string | null;
  /** Text to write for a received line (CRLF added per line); undefined = say nothing. */
  readonly respond?: (line: string, conn: FakeConn) => string | string[] | undefined;
}

export interface FakeImap {
  readonly host: string;
  readonly port: number;
  readonly connections: FakeConn[];
  close(): Promise<void>;
}

export const FAKE_GREETING = '* OK [CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN] fake ready';

/** Answers CAPABILITY and ID like a plain server; everything else goes to `respond`. */
export function plainServer(login: (line: string) => string | string[]): (line: string, conn: FakeConn) => string | string[] | undefined {
  return (line) => {
    const [tag, cmd] = line.split(' ');
    switch (cmd?.toUpperCase()) {
      case 'CAPABILITY':
        return ['* CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN', `${tag} OK done`];
      case 'ID':
        return ['* ID ("name" "fake")', `${tag} OK ID done`];
      case 'LOGIN':
      case 'AUTHENTICATE':
        return login(line);
      case 'LOGOUT':
        return ['* BYE bye', `${tag} OK bye`];
      default:
        return `${tag} OK fine`;
    }
  };
}

/** A plain server that takes every login: `<tag> OK [CAPABILITY IMAP4rev1] <text>`. */
export function acceptingLogins(text = 'Logged in'): (line: string, conn: FakeConn) => string | string[] | undefined {
  return plainServer((line) => `${line.split(' ')[0]} OK [CAPABILITY IMAP4rev1] ${text}`);
}

export async function startFakeImap(opts: FakeImapOptions = {}): Promise<FakeImap> {
  const connections: FakeConn[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const conn: FakeConn = {
      socket,
      remoteAddress: socket.remoteAddress,
      received: [],
      write: (text) => {
        if (!socket.destroyed) socket.write(text);
      },
    };
    connections.push(conn);
    const greeting = opts.greeting === undefined ? FAKE_GREETING : opts.greeting;
    if (greeting !== null) conn.write(`${greeting}\r\n`);
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
        const line = buf.slice(0, lf).replace(/\r$/, '');
        buf = buf.slice(lf + 1);
        conn.received.push(line);
        const out = opts.respond?.(line, conn);
        if (out !== undefined) conn.write((Array.isArray(out) ? out : [out]).map((l) => `${l}\r\n`).join(''));
      }
    });
  });
  const host = opts.host ?? '127.0.0.4';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host,
    port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
