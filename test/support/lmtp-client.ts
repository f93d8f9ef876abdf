import { connect } from 'node:net';
import type { Socket } from 'node:net';

export interface SmtpReply {
  code: number;
  lines: string[];
}

export interface LmtpDeliverOptions {
  host: string;
  port: number;
  /** MAIL FROM address without brackets; '' is the null sender. */
  from: string;
  to: string[];
  data: Buffer | string;
  localAddress?: string;
  timeoutMs?: number;
}

/** Line-oriented SMTP/LMTP reply reader over a raw socket. */
export class SmtpReplyReader {
  #buf = '';
  #waiters: ((line: string | Error) => void)[] = [];
  #lines: string[] = [];
  #error: Error | undefined;

  constructor(sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      this.#buf += chunk;
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.#push(this.#buf.slice(0, i).replace(/\r$/, ''));
        this.#buf = this.#buf.slice(i + 1);
      }
    });
    const fail = (err: Error): void => {
      this.#error ??= err;
      for (const w of this.#waiters.splice(0)) w(this.#error);
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  #push(line: string): void {
    const w = this.#waiters.shift();
    if (w !== undefined) w(line);
    else this.#lines.push(line);
  }

  #line(): Promise<string> {
    const l = this.#lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.#error !== undefined) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#waiters.push((v) => (typeof v === 'string' ? resolve(v) : reject(v)));
    });
  }

  /** One (possibly multi-line) reply: `250-...` lines up to the `250 ...` one. */
  async reply(): Promise<SmtpReply> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.#line();
      lines.push(line);
      if (!/^\d{3}-/.test(line)) return { code: Number(line.slice(0, 3)), lines };
    }
  }
}

/** SMTP DATA encoding: CRLF line ends, dot-stuffing, terminating CRLF.CRLF (RFC 5321 4.5.2). */
export function dotStuff(data: Buffer | string): Buffer {
  let text = (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('latin1');
  text = text.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  if (!text.endsWith('\r\n')) text += '\r\n';
  return Buffer.from(text + '.\r\n', 'latin1');
}

function expect(r: SmtpReply, ok: (code: number) => boolean, what: string): void {
  if (!ok(r.code)) throw new Error(`LMTP ${what}: ${r.lines.join(' / ')}`);
}

/** Deliver one message by LMTP; rejects unless every recipient got a 2xx reply. */
export async function lmtpDeliver(o: LmtpDeliverOptions): Promise<SmtpReply[]> {
  const sock = connect({ host: o.host, port: o.port, ...(o.localAddress !== undefined ? { localAddress: o.localAddress } : {}) });
  sock.setTimeout(o.timeoutMs ?? 10_000, () => sock.destroy(new Error('LMTP timeout')));
  const r = new SmtpReplyReader(sock);
  const send = (s: string | Buffer): void => {
    sock.write(s);
  };
  try {
    expect(await r.reply(), (c) => c === 220, 'greeting');
    send('LHLO portier-test\r\n');
    expect(await r.reply(), (c) => c === 250, 'LHLO');
    send(`MAIL FROM:<${o.from}>\r\n`);
    expect(await r.reply(), (c) => c === 250, 'MAIL');
    for (const rcpt of o.to) {
      send(`RCPT TO:<${rcpt}>\r\n`);
      expect(await r.reply(), (c) => c === 250, `RCPT ${rcpt}`);
    }
    send('DATA\r\n');
    expect(await r.reply(), (c) => c === 354, 'DATA');
    send(dotStuff(o.data));
    const replies: SmtpReply[] = [];
    for (const rcpt of o.to) {
      const rep = await r.reply();
      expect(rep, (c) => c >= 200 && c < 300, `delivery to ${rcpt}`);
      replies.push(rep);
    }
    send('QUIT\r\n');
    await r.reply().catch(() => undefined);
    return replies;
  } finally {
    sock.destroy();
  }
}
