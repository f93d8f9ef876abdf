/**
 * Peers for LMTP proxy tests: python3 smtplib.LMTP as a real client (with one DATA reply per
 * accepted recipient, read by smtplib's own getreply), swaks, an SMTP reply reader over a
 * LineClient, and scripted misbehaving LMTP backends (silent, dying mid-DATA, answering only
 * some recipients) for failures a real server will not produce on demand.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { LineClient } from './lines.js';
import { runPython } from './python-clients.js';

export interface SmtplibSpec {
  port: number;
  host?: string;
  source?: string;
  from: string;
  rcpts: string[];
  message: Buffer;
  /** Extra MAIL parameters (e.g. `SIZE=123`). */
  mailOptions?: string[];
  /** STARTTLS first, verifying the server with this CA file. */
  starttlsCa?: string;
  /** Send XCLIENT attributes first (a trusted MTA forwarding its client). */
  xclient?: string;
}

export interface SmtplibResult {
  lhlo?: [number, string];
  starttls?: [number, string];
  xclient?: [number, string];
  mail?: [number, string];
  rcpt: [number, string][];
  data: [number, string][];
  error?: string;
}

const SMTPLIB = String.raw`
import base64, json, smtplib, ssl, sys
spec = json.loads(sys.stdin.read())
out = {'rcpt': [], 'data': []}
def pair(r):
    return [r[0], r[1].decode('latin1') if isinstance(r[1], bytes) else str(r[1])]
try:
    c = smtplib.LMTP(spec['host'], spec['port'], local_hostname='mta.test', source_address=(spec['source'], 0), timeout=120)
    out['lhlo'] = pair(c.ehlo())
    if spec.get('xclient'):
        out['xclient'] = pair(c.docmd('XCLIENT', spec['xclient']))
        out['lhlo'] = pair(c.ehlo())
    if spec.get('starttlsCa'):
        out['starttls'] = pair(c.starttls(context=ssl.create_default_context(cafile=spec['starttlsCa'])))
        out['lhlo'] = pair(c.ehlo())
    out['mail'] = pair(c.mail(spec['from'], spec.get('mailOptions', [])))
    for r in spec['rcpts']:
        out['rcpt'].append(pair(c.rcpt(r)))
    accepted = sum(1 for r in out['rcpt'] if r[0] == 250)
    if out['mail'][0] == 250 and accepted > 0:
        # smtplib's data() stuffs dots and reads the first reply; LMTP sends one per recipient.
        out['data'].append(pair(c.data(base64.b64decode(spec['message']))))
        for _ in range(accepted - 1):
            out['data'].append(pair(c.getreply()))
    c.quit()
except Exception as e:
    out['error'] = '%s: %s' % (type(e).__name__, e)
print(json.dumps(out))
`;

/** One LMTP transaction with python3's smtplib, from 127.0.0.5 unless told otherwise. */
export function smtplib(spec: SmtplibSpec): Promise<SmtplibResult> {
  const input = JSON.stringify({ ...spec, host: spec.host ?? '127.0.0.1', source: spec.source ?? '127.0.0.5', message: spec.message.toString('base64') });
  return runPython<SmtplibResult>('smtplib', SMTPLIB, { stdin: input, timeoutMs: 180_000, maxBuffer: 16 << 20 });
}

/** swaks (Debian's), speaking LMTP; resolves with its transcript (exit code is not an error). */
export function swaks(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('swaks', ['--protocol', 'LMTP', '--timeout', '30', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** One SMTP reply from a LineClient: its lines up to the one with `ddd ` (the last). */
export async function readReply(c: LineClient, timeoutMs = 10_000): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.line(timeoutMs);
    lines.push(l);
    if (!/^\d{3}-/.test(l)) return lines;
  }
}

/** The last line of the next reply (what matters for single-line replies). */
export async function reply(c: LineClient, timeoutMs = 10_000): Promise<string> {
  const lines = await readReply(c, timeoutMs);
  return lines[lines.length - 1] ?? '';
}

export type FakeBehaviour =
  /** Accept connections and never say a word. */
  | { kind: 'silent' }
  /** A well-behaved LMTP server: every recipient accepted, every message saved. */
  | { kind: 'ok' }
  /** Speak LMTP, accept every recipient, then close the connection after this many DATA bytes. */
  | { kind: 'die-in-data'; afterBytes: number }
  /** Speak LMTP, take the whole message, answer only the first `replies` recipients, then close. */
  | { kind: 'partial-replies'; replies: number };

/** One connection a fake backend accepted: what it was told, and when it closed. */
export interface FakeConn {
  readonly lines: string[];
  /** The most command lines that arrived in one read (more than 1: pipelined). */
  maxPerRead: number;
  /** Messages ended by the terminating dot on this connection. */
  dots: number;
  /** Content bytes of the DATA in progress (no dot yet). */
  pending: number;
  /** Messages ended by BDAT ... LAST on this connection. */
  bdats: number;
  /** The proxy's FIN came before this backend closed its side (the proxy closed first). */
  peerClosedFirst: boolean;
  open: boolean;
  readonly closed: Promise<void>;
}

export interface FakeLmtp {
  readonly host: string;
  readonly port: number;
  /** Every command line received, in order, over all connections. */
  readonly lines: string[];
  /** The remote address of each connection (to see source_ip at work). */
  readonly peers: string[];
  /** Bytes of DATA content each connection received (to prove what was sent). */
  readonly received: Buffer[];
  /** Every connection accepted, in order. */
  readonly conns: FakeConn[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections still open. */
  open(): number;
  /** Resolves when every connection accepted so far has closed. */
  allClosed(): Promise<void>;
  close(): Promise<void>;
}

/** How a fake backend treats the nth MAIL (1-based) on one of its connections. */
export type FakeMailAction = 'ok' | 'close' | '421';

export interface FakeOptions {
  /** Extra LHLO/EHLO capability lines. */
  caps?: string[];
  /** Speak SMTP: EHLO, and one DATA reply for all recipients. */
  smtp?: boolean;
  /** Implicit TLS with this certificate. */
  tls?: { certFile: string; keyFile: string };
  /** Do not offer PIPELINING (RFC 2920): the proxy must wait for each reply. */
  noPipelining?: boolean;
  mail?: (nthOnConnection: number) => FakeMailAction;
  rset?: 'ok' | 'refuse';
  /** DATA: 354, `refuse` with 554, `close` the connection instead of answering, or `hang` (no answer). */
  data?: 'ok' | 'refuse' | 'close' | 'hang';
  /** Close the connection (FIN) right after the DATA replies. */
  closeAfterData?: boolean;
  /** Answer QUIT with 221 but close only this many ms later (default: at once). */
  quitLingerMs?: number;
  /** Offer CHUNKING (RFC 3030) and take BDAT; `refuse`: 554 to each recipient of BDAT LAST. */
  chunking?: 'ok' | 'refuse';
  /** Answer a second XCLIENT on one connection with 550 (as a backend that judges it by the first one's address might). */
  xclientOnce?: boolean;
}

const CRLF = Buffer.from('\r\n');

/** A scripted LMTP (or SMTP) backend on `host` (a loopback address) for failure modes. */
export async function startFakeLmtp(host: string, behaviour: FakeBehaviour, opts: FakeOptions = {}): Promise<FakeLmtp> {
  const caps = [...(opts.noPipelining === true ? [] : ['PIPELINING']), 'ENHANCEDSTATUSCODES', ...(opts.chunking !== undefined ? ['CHUNKING'] : []), ...(opts.caps ?? [])];
  const sockets = new Set<Socket>();
  const received: Buffer[] = [];
  const lines: string[] = [];
  const peers: string[] = [];
  const conns: FakeConn[] = [];
  const onConnection = (socket: Socket): void => {
    peers.push(socket.remoteAddress ?? '');
    sockets.add(socket);
    let done!: () => void;
    const conn: FakeConn = { lines: [], maxPerRead: 0, dots: 0, pending: 0, bdats: 0, peerClosedFirst: false, open: true, closed: new Promise<void>((r) => (done = r)) };
    conns.push(conn);
    socket.on('close', () => {
      sockets.delete(socket);
      conn.open = false;
      done();
    });
    socket.on('error', () => {});
    let closing = false;
    socket.on('end', () => {
      if (!closing) conn.peerClosedFirst = true;
    });
    if (behaviour.kind === 'silent') return;
    socket.write('220 fake LMTP\r\n');
    let buf = Buffer.alloc(0);
    let inData = false;
    let rcpts = 0;
    let mails = 0;
    let dataBuf = Buffer.alloc(0);
    /** BDAT in progress: bytes still to come, and whether it is the LAST chunk. */
    let chunk: { left: number; last: boolean } | undefined;
    let chunks: Buffer[] = [];
    /**
     * The replies to a whole message (DATA's dot or BDAT LAST): one per recipient (SMTP: one),
     * fewer with partial-replies; false when the behaviour ends the connection here.
     */
    const answerMessage = (refuse: boolean): boolean => {
      const n = opts.smtp === true ? 1 : behaviour.kind === 'partial-replies' ? Math.min(behaviour.replies, rcpts) : rcpts;
      for (let i = 0; i < n; i++) socket.write(refuse ? `554 5.6.0 fake refuses the message ${i + 1}\r\n` : `250 2.0.0 fake saved ${i + 1}\r\n`);
      rcpts = 0;
      if (behaviour.kind !== 'ok') {
        socket.destroy();
        return false;
      }
      if (opts.closeAfterData === true) {
        socket.end();
        return false;
      }
      return true;
    };
    socket.on('data', (data: Buffer) => {
      buf = Buffer.concat([buf, data]);
      let commands = 0;
      for (;;) {
        conn.maxPerRead = Math.max(conn.maxPerRead, commands);
        if (chunk !== undefined) {
          const take = Math.min(chunk.left, buf.length);
          chunks.push(Buffer.from(buf.subarray(0, take)));
          buf = buf.subarray(take);
          chunk.left -= take;
          conn.pending = chunks.reduce((n, b) => n + b.length, 0);
          if (behaviour.kind === 'die-in-data' && conn.pending >= behaviour.afterBytes) {
            received.push(Buffer.concat(chunks));
            socket.destroy();
            return;
          }
          if (chunk.left > 0) return;
          const last = chunk.last;
          chunk = undefined;
          if (!last) {
            socket.write('250 2.0.0 chunk OK\r\n');
            continue;
          }
          conn.pending = 0;
          conn.bdats++;
          received.push(Buffer.concat(chunks));
          chunks = [];
          if (!answerMessage(opts.chunking === 'refuse')) return;
          continue;
        }
        if (inData) {
          // The terminator may arrive split over chunks; the DATA line's CRLF counts as its first.
          dataBuf = Buffer.concat([dataBuf, buf]);
          buf = Buffer.alloc(0);
          const end = Buffer.concat([CRLF, dataBuf]).indexOf('\r\n.\r\n');
          conn.pending = end < 0 ? dataBuf.length : 0;
          if (behaviour.kind === 'die-in-data' && (end < 0 ? dataBuf.length : end) >= behaviour.afterBytes) {
            received.push(dataBuf);
            socket.destroy();
            return;
          }
          if (end < 0) return;
          const content = Buffer.from(dataBuf.subarray(0, end));
          buf = dataBuf.subarray(end + 3);
          dataBuf = Buffer.alloc(0);
          inData = false;
          conn.dots++;
          received.push(content);
          if (!answerMessage(false)) return;
          continue;
        }
        const lf = buf.indexOf('\n');
        if (lf < 0) return;
        const line = buf.subarray(0, lf).toString('latin1').replace(/\r$/, '');
        buf = buf.subarray(lf + 1);
        lines.push(line);
        conn.lines.push(line);
        commands++;
        const verb = line.split(' ')[0]?.toUpperCase();
        if (verb === (opts.smtp === true ? 'EHLO' : 'LHLO')) socket.write(['fake', ...caps].map((c, i, all) => `250${i === all.length - 1 ? ' ' : '-'}${c}\r\n`).join(''));
        else if (verb === 'XCLIENT') {
          const again = conn.lines.filter((l) => l.toUpperCase().startsWith('XCLIENT')).length > 1;
          socket.write(again && opts.xclientOnce === true ? '550 5.7.0 fake: not from a trusted address\r\n' : '220 fake LMTP again\r\n');
        }
        else if (verb === 'MAIL') {
          const action = opts.mail?.(++mails) ?? 'ok';
          if (action === 'close') return void socket.destroy();
          if (action === '421') return void socket.end('421 4.4.2 fake closing\r\n');
          socket.write('250 2.1.0 OK\r\n');
        } else if (verb === 'RCPT') {
          rcpts++;
          socket.write('250 2.1.5 OK\r\n');
        } else if (verb === 'DATA') {
          if (opts.data === 'refuse') socket.write('554 5.6.0 fake refuses DATA\r\n');
          else if (opts.data === 'close') return void socket.destroy();
          else if (opts.data === 'hang') return;
          else {
            inData = true;
            socket.write('354 OK\r\n');
          }
        } else if (verb === 'BDAT' && opts.chunking !== undefined) {
          const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
          if (m === null) socket.write('501 5.5.4 fake: bad BDAT\r\n');
          else chunk = { left: Number(m[1]), last: m[2] !== undefined };
          if (chunk?.left === 0) continue;
        } else if (verb === 'RSET') {
          chunks = [];
          rcpts = 0;
          socket.write(opts.rset === 'refuse' ? '502 5.5.1 fake has no RSET\r\n' : '250 2.0.0 OK\r\n');
        } else if (verb === 'QUIT') {
          const linger = opts.quitLingerMs;
          if (linger === undefined) {
            closing = true;
            socket.end('221 2.0.0 Bye\r\n');
          } else {
            socket.write('221 2.0.0 Bye\r\n');
            setTimeout(() => {
              closing = true;
              socket.end();
            }, linger);
          }
        }
        else socket.write('500 5.5.1 Unknown command\r\n');
      }
    });
  };
  const server: Server = opts.tls === undefined
    ? createServer(onConnection)
    : createTlsServer({ cert: readFileSync(opts.tls.certFile), key: readFileSync(opts.tls.keyFile) }, onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    lines,
    peers,
    received,
    conns,
    connections: () => conns.length,
    open: () => conns.filter((c) => c.open).length,
    allClosed: () => Promise.all(conns.map((c) => c.closed)).then(() => undefined),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
