/**
 * A raw line client for protocol tests: connect (optionally from a chosen loopback address,
 * so the client is not "local" to the server), send bytes, read lines with timeouts, upgrade
 * to TLS. Every wait is bounded.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export class LineClient {
  socket: Socket;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.#attach(socket);
  }

  static async connect(port: number, opts: { host?: string; localAddress?: string; tls?: ConnectionOptions } = {}): Promise<LineClient> {
    const host = opts.host ?? '127.0.0.1';
    const socket: Socket = await new Promise((resolve, reject) => {
      const s = opts.tls
        ? tlsConnect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), ...opts.tls }, () => resolve(s))
        : netConnect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) }, () => resolve(s));
      s.once('error', reject);
    });
    socket.on('error', () => {});
    return new LineClient(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Next line without its CRLF. */
  async line(timeoutMs = 5000): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const lf = this.#buf.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.#buf.subarray(0, lf).toString('utf8').replace(/\r$/, '');
        this.#buf = this.#buf.subarray(lf + 1);
        return line;
      }
      if (this.#closed) throw new Error(`connection closed (pending: ${JSON.stringify(this.#buf.toString())})`);
      await this.#wait(until, timeoutMs);
    }
  }

  /** Lines up to and including the first one starting with `${tag} `. */
  async until(tag: string, timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line(timeoutMs);
      lines.push(l);
      if (l.startsWith(`${tag} `)) return lines;
    }
  }

  /** Exactly n bytes (for literals). */
  async bytes(n: number, timeoutMs = 10_000): Promise<Buffer> {
    const until = Date.now() + timeoutMs;
    while (this.#buf.length < n) {
      if (this.#closed) throw new Error('connection closed');
      await this.#wait(until, timeoutMs);
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Resolves when the server closes the connection (rejects after the timeout). */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!this.#closed) await this.#wait(until, timeoutMs);
  }

  /** Everything received and not yet read. */
  pending(): string {
    return this.#buf.toString('utf8');
  }

  async starttls(opts: ConnectionOptions): Promise<TLSSocket> {
    this.socket.removeAllListeners('data');
    const tls = await new Promise<TLSSocket>((resolve, reject) => {
      const t = tlsConnect({ socket: this.socket, ...opts }, () => resolve(t));
      t.once('error', reject);
    });
    tls.on('error', () => {});
    this.socket = tls;
    this.#buf = Buffer.alloc(0);
    this.#attach(tls);
    return tls;
  }

  close(): void {
    this.socket.destroy();
  }

  #attach(socket: Socket): void {
    socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async #wait(until: number, timeoutMs: number): Promise<void> {
    const left = until - Date.now();
    if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms (pending: ${JSON.stringify(this.#buf.toString().slice(0, 200))})`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
