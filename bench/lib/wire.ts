/**
 * The generator's side of a connection: connect (plain, implicit TLS), read CRLF lines and
 * skip literal bytes without copying them, upgrade for STARTTLS. One reader at a time (the
 * protocols are driven strictly request/response), so there is one waiter, not a queue.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

export type ErrorKind =
  | 'connect'
  | 'timeout'
  | 'closed'
  | 'reset'
  | 'tls'
  | 'greeting'
  | 'auth'
  | 'refused'
  | 'protocol'
  | 'size'
  | 'other';

/** A failure the benchmark counts by kind; `detail` goes to the samples, not the counters. */
export class BenchError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, detail: string) {
    super(detail);
    this.kind = kind;
  }
}

/** Map anything thrown by a socket or protocol step to a counted kind. */
export function errorKind(err: unknown): ErrorKind {
  if (err instanceof BenchError) return err.kind;
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'EADDRNOTAVAIL' || code === 'EADDRINUSE') return 'connect';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /SSL|TLS/i.test(String((err as Error | undefined)?.message))) return 'tls';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

export type TlsMode = 'none' | 'implicit' | 'starttls';

export interface Endpoint {
  host: string;
  port: number;
  tls: TlsMode;
  /** Local address to connect from (default: the kernel's choice). */
  source?: string;
  /** SNI name for TLS. */
  servername?: string;
  /** Ask for the server's certificate of this key type (by the signature algorithms offered). */
  keyType?: KeyType;
}

export type KeyType = 'ecdsa' | 'rsa';

const SIGALGS: Record<KeyType, string> = {
  ecdsa: 'ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384',
  rsa: 'rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pkcs1_sha256',
};

function tlsOptions(ep: Pick<Endpoint, 'servername' | 'keyType'>): Record<string, unknown> {
  return { ...TLS_CLIENT, ...(ep.servername ? { servername: ep.servername } : {}), ...(ep.keyType !== undefined ? { sigalgs: SIGALGS[ep.keyType] } : {}) };
}

const TLS_CLIENT = { rejectUnauthorized: false, minVersion: 'TLSv1.2' as const };

/** Connect; with implicit TLS, resolves after the handshake. */
export function connect(ep: Endpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const local = ep.source !== undefined ? { localAddress: ep.source } : {};
    const onError = (err: Error): void => reject(ep.tls === 'implicit' && !('syscall' in err) ? new BenchError('tls', err.message) : err);
    if (ep.tls === 'implicit') {
      const s = tlsConnect({ host: ep.host, port: ep.port, ...local, ...tlsOptions(ep) }, () => {
        s.removeListener('error', onError);
        resolve(s);
      });
      s.once('error', onError);
      s.setNoDelay(true);
    } else {
      const s = netConnect({ host: ep.host, port: ep.port, ...local, noDelay: true }, () => {
        s.removeListener('error', onError);
        resolve(s);
      });
      s.once('error', onError);
    }
  });
}

/** Upgrade a plain socket after the server said yes to STARTTLS/STLS. */
export function startTls(sock: Socket, ep: Pick<Endpoint, 'servername' | 'keyType'>): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tlsConnect({ socket: sock, ...tlsOptions(ep) }, () => {
      t.removeListener('error', onError);
      resolve(t);
    });
    const onError = (err: Error): void => reject(new BenchError('tls', err.message));
    t.once('error', onError);
  });
}

export class Wire {
  #sock: Socket;
  #buf: Buffer = Buffer.alloc(0);
  #skip = 0;
  #wake: (() => void) | undefined;
  #ended = false;
  #error: Error | undefined;
  /** Bytes received over the connection's life (literals included). */
  received = 0;

  constructor(sock: Socket) {
    this.#sock = sock;
    this.#attach(sock);
  }

  get socket(): Socket {
    return this.#sock;
  }

  write(data: string | Buffer): void {
    this.#sock.write(data);
  }

  /** Switch to the TLS socket wrapping the current one (nothing may be buffered). */
  upgrade(tls: TLSSocket): void {
    this.#sock.removeAllListeners('data');
    this.#sock.removeAllListeners('end');
    this.#sock = tls;
    this.#buf = Buffer.alloc(0);
    this.#attach(tls);
  }

  /** Next line without CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const lf = this.#buf.indexOf(10);
      if (lf >= 0) {
        const end = lf > 0 && this.#buf[lf - 1] === 13 ? lf - 1 : lf;
        const text = this.#buf.toString('latin1', 0, end);
        this.#buf = this.#buf.subarray(lf + 1);
        return text;
      }
      await this.#wait();
    }
  }

  /** Discard exactly n bytes (a literal), counting them but never copying them. */
  async skip(n: number): Promise<void> {
    const fromBuf = Math.min(n, this.#buf.length);
    this.#buf = this.#buf.subarray(fromBuf);
    this.#skip = n - fromBuf;
    while (this.#skip > 0) await this.#wait();
  }

  /** Resolves when the peer has closed its side (its FIN arrived). */
  async closed(): Promise<void> {
    while (!this.#ended) {
      try {
        await this.#wait();
      } catch (err) {
        if (err instanceof BenchError && err.kind === 'closed') return;
        throw err;
      }
    }
  }

  destroy(err?: Error): void {
    if (err !== undefined && this.#error === undefined) this.#error = err;
    this.#sock.destroy();
    this.#notify();
  }

  #wait(): Promise<void> {
    if (this.#error !== undefined) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(new BenchError('closed', 'connection closed by the server'));
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #attach(sock: Socket): void {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, d.length);
        this.#skip -= take;
        if (take === d.length) {
          if (this.#skip === 0) this.#notify();
          return;
        }
        d = d.subarray(take);
      }
      this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
      this.#notify();
    });
    sock.on('end', () => {
      this.#ended = true;
      this.#notify();
    });
    sock.on('error', (err: Error) => {
      this.#error ??= err;
      this.#notify();
    });
    sock.on('close', () => {
      this.#ended = true;
      this.#notify();
    });
  }
}
