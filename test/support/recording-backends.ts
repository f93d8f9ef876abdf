/**
 * Scripted IMAP, POP3 and LMTP backends that accept any login and record exactly what they
 * were sent, parsed the way a real server parses it (portier's own IMAP command reader,
 * literals included), for tests that prove nothing is injected toward a backend (R22).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { ImapArg } from '../../src/imap/wire/args.js';
import { ImapCommandReader } from '../../src/imap/wire/command-reader.js';

export interface RecordedImapCommand {
  readonly tag: string;
  readonly name: string;
  readonly args: readonly ImapArg[];
  /** AUTHENTICATE without SASL-IR: the response line that followed. */
  saslResponse?: string;
}

export interface Recorder<C> {
  readonly host: string;
  readonly port: number;
  /** One list per connection, in arrival order. */
  readonly sessions: C[][];
  /** Raw bytes per connection. */
  readonly raw: Buffer[];
  close(): Promise<void>;
}

async function listen<C>(host: string, onConn: (socket: Socket, record: C[], raw: { bytes: Buffer }) => void): Promise<Recorder<C>> {
  const sessions: C[][] = [];
  const raw: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const record: C[] = [];
    sessions.push(record);
    const index = raw.push(Buffer.alloc(0)) - 1;
    const box = { bytes: Buffer.alloc(0) };
    socket.on('data', (d: Buffer) => {
      box.bytes = Buffer.concat([box.bytes, d]);
      raw[index] = box.bytes;
    });
    onConn(socket, record, box);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    host,
    port: (server.address() as { port: number }).port,
    sessions,
    raw,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** IMAP: greets with `capabilities`, answers ID, LOGIN and AUTHENTICATE (any credentials) with OK. */
export function recordingImap(host: string, capabilities = 'IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN'): Promise<Recorder<RecordedImapCommand>> {
  return listen<RecordedImapCommand>(host, (socket, record) => {
    const reader = new ImapCommandReader({ maxLineLength: 65536, maxLiteralSize: 65536 });
    let pendingSasl: RecordedImapCommand | undefined;
    socket.write(`* OK [CAPABILITY ${capabilities}] recorder ready\r\n`);
    socket.on('data', (d: Buffer) => {
      reader.push(d);
      for (let ev = reader.next(); ev !== null; ev = reader.next()) {
        if (ev.kind === 'continue-literal') socket.write('+ go on\r\n');
        else if (ev.kind === 'line' && pendingSasl !== undefined) {
          pendingSasl.saslResponse = ev.line.toString('latin1');
          socket.write(`${pendingSasl.tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n`);
          pendingSasl = undefined;
        } else if (ev.kind === 'command') {
          const cmd: RecordedImapCommand = { tag: ev.tag, name: ev.name, args: ev.args };
          record.push(cmd);
          if (ev.name === 'ID') socket.write(`* ID NIL\r\n${ev.tag} OK ID done\r\n`);
          else if (ev.name === 'AUTHENTICATE' && ev.args.length < 2) {
            pendingSasl = cmd;
            reader.readRawLine();
            socket.write('+ \r\n');
          } else if (ev.name === 'LOGIN' || ev.name === 'AUTHENTICATE') socket.write(`${ev.tag} OK [CAPABILITY IMAP4rev1] Logged in\r\n`);
          else socket.write(`${ev.tag} OK done\r\n`);
        } else if (ev.kind === 'error') record.push({ tag: '*', name: `ERROR ${ev.error}`, args: [] });
      }
    });
  });
}

/** POP3 with `+OK [XCLIENT]`: every line is recorded as received (CR inside a line kept). */
export function recordingPop3(host: string): Promise<Recorder<string>> {
  return listen<string>(host, (socket, record) => {
    let buf = '';
    socket.write('+OK [XCLIENT] recorder ready\r\n');
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
        const line = buf.slice(0, lf).replace(/\r$/, '');
        buf = buf.slice(lf + 1);
        record.push(line);
        socket.write(line.toUpperCase().startsWith('PASS') || line.toUpperCase().startsWith('AUTH') ? '+OK Logged in.\r\n' : '+OK\r\n');
      }
    });
  });
}

/** LMTP offering XCLIENT and XRCPTFORWARD; command lines recorded, DATA content not. */
export function recordingLmtp(host: string): Promise<Recorder<string>> {
  return listen<string>(host, (socket, record) => {
    let buf = '';
    let inData = false;
    let rcpts = 0;
    socket.write('220 recorder LMTP ready\r\n');
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let lf = buf.indexOf('\n'); lf >= 0; lf = buf.indexOf('\n')) {
        const line = buf.slice(0, lf).replace(/\r$/, '');
        buf = buf.slice(lf + 1);
        if (inData) {
          if (line === '.') {
            inData = false;
            socket.write('250 2.0.0 Saved\r\n'.repeat(rcpts));
            rcpts = 0;
          }
          continue;
        }
        record.push(line);
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === 'LHLO') socket.write('250-recorder\r\n250-XCLIENT ADDR PORT HELO PROTO SESSION TTL\r\n250-XRCPTFORWARD\r\n250 8BITMIME\r\n');
        else if (verb === 'XCLIENT') socket.write('220 recorder ready again\r\n');
        else if (verb === 'RCPT') {
          rcpts++;
          socket.write('250 2.1.5 OK\r\n');
        } else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 OK\r\n');
      }
    });
  });
}
