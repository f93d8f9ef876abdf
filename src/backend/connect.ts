/**
 * Connecting to a backend: DNS (short cache), source address, TCP, optional implicit TLS,
 * and a small reader the upstream dialogues await chunks from. Every wait is bounded by the
 * caller's Cancel (proxy_timeout: a Deadline, or any AbortSignal); every failure is a typed
 * ProxyFailureError.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, isIP, type Socket, type TcpNetConnectOpts } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { errorText } from '../errors.js';
import type { Cancel } from './deadline.js';
import { failure, ProxyFailureError } from './failure.js';

export interface Endpoint {
  /** As the passdb gave it: a name (for SNI and certificate checks) or an IP. */
  readonly host: string;
  /** The address to connect to. */
  readonly address: string;
  readonly port: number;
  readonly sourceIp?: string | undefined;
}

const DNS_TTL_MS = 30_000;
const dnsCache = new Map<string, { addresses: string[]; expires: number }>();

/** The addresses of `host` without waiting: itself when it is an IP, else a fresh cache entry; undefined when DNS must be asked. */
export function knownAddresses(host: string): string[] | undefined {
  if (isIP(host) !== 0) return [host];
  const hit = dnsCache.get(host);
  return hit !== undefined && hit.expires > Date.now() ? hit.addresses : undefined;
}

/** Resolve a backend host name (IPs pass through); cached briefly so a login storm asks once. */
export async function resolveHost(host: string, signal: Cancel): Promise<string[]> {
  const known = knownAddresses(host);
  if (known !== undefined) return known;
  try {
    const answer = await abortable(lookup(host, { all: true }), signal);
    const addresses = answer.map((a) => a.address);
    dnsCache.set(host, { addresses, expires: Date.now() + DNS_TTL_MS });
    return addresses;
  } catch (err) {
    if (err instanceof ProxyFailureError) throw err;
    throw new ProxyFailureError(failure('connect', `DNS lookup of ${host} failed: ${errorText(err)}`));
  }
}

/**
 * Takes what a backend socket made with `sharedReads` reads, one chunk per read. The chunk is
 * a view of a buffer every such socket shares: it is valid only during the call (copy what
 * is kept, or write it where it is copied or sent at once).
 */
export interface BackendSink {
  /** `lent`: the read landed in memory this sink lent (`lend`); the chunk is the sink's to keep. */
  backendData(chunk: Buffer, lent?: Uint8Array): void;
  /**
   * Memory of SHARED_READ_SIZE bytes for the next read when a read filled its buffer (a bulk
   * transfer); undefined to read into the shared buffer (e.g. while the socket is paused).
   */
  lend?(): Uint8Array | undefined;
}

const kSink = Symbol('portier.backendSink');
type SinkSocket = Socket & { [kSink]?: BackendSink | undefined };

/**
 * The size of one backend read. Node's own reads stop at 64 KiB; with 256 KiB a bulk FETCH
 * takes a quarter of the reads, writes and event-loop turns (on loopback: about 25 % more
 * MB/s and 25 % less CPU per GB; 1 MiB gained nothing more). Small replies are not slowed:
 * a read returns what the kernel holds.
 */
export const SHARED_READ_SIZE = 256 * 1024;

/**
 * One read buffer for every plaintext backend socket: a read allocates nothing. With Node's
 * own reads each 64 KiB chunk was a new allocation outside the V8 heap, and at ~1 GB/s that
 * external memory kept asking for full garbage collections (a bulk FETCH at half speed).
 * A read that fills its buffer means more is waiting (a bulk transfer): when the sink can
 * lend memory, the socket's next read lands there and the sink keeps it without a copy.
 * Only such a socket holds a buffer of its own, and only until its next read.
 */
const sharedBuffer = Buffer.allocUnsafeSlow(SHARED_READ_SIZE);
/** The buffer the next read of the socket just read from goes to (Node asks right after the callback). */
let nextRead: Uint8Array = sharedBuffer;
const SHARED_READS = {
  buffer(): Uint8Array {
    const b = nextRead;
    nextRead = sharedBuffer;
    return b;
  },
  callback(this: SinkSocket, nread: number, buf: Uint8Array): boolean {
    const sink = this[kSink];
    if (sink !== undefined) {
      sink.backendData(Buffer.from(buf.buffer, buf.byteOffset, nread), buf === sharedBuffer ? undefined : buf);
      if (nread === buf.length) nextRead = sink.lend?.() ?? sharedBuffer;
    }
    return true;
  },
};

/** Whether this socket reads into the shared buffer (its data comes to a BackendSink, not 'data'). */
export function hasSharedReads(socket: Socket): boolean {
  return kSink in socket;
}

/** Where a shared-reads socket's data goes from now on (undefined: nowhere; pause it first). */
export function setBackendSink(socket: Socket, sink: BackendSink | undefined): void {
  (socket as SinkSocket)[kSink] = sink;
}

/**
 * What Node's `Socket` constructor sets on its copy of the options (net.js: `options = { ...options }`,
 * then these four), given up front. Node 20's V8 gives a property added to an object-spread copy
 * a new hidden class every time, so each socket's options had a map of their own and every
 * option read in the Socket and Duplex constructors missed its inline cache (about 25 misses
 * per socket, 7 µs of CPU, in a loop of `new Socket()`). With the four already there the copy
 * keeps the one shape and those reads stay cached (0.2 µs). Same values Node sets: no change in
 * behaviour. Spread last into a literal whose other keys are always present, for the same reason.
 */
export const SOCKET_CONSTRUCTOR_DEFAULTS = { allowHalfOpen: true, emitClose: false, autoDestroy: true, decodeStrings: false } as const;

/**
 * TCP to the backend. `sharedReads` (plaintext backends): its reads land in the shared buffer
 * and go to the socket's BackendSink (setBackendSink) instead of 'data' events.
 */
export function connectTcp(ep: Endpoint, signal: Cancel, sharedReads = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      socket.destroy();
      reject(new ProxyFailureError(failure('timeout', `connect to ${ep.address}:${ep.port} timed out`)));
    };
    if (signal.aborted) {
      reject(new ProxyFailureError(failure('timeout', `connect to ${ep.address}:${ep.port} timed out`)));
      return;
    }
    const onError = (err: Error): void => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new ProxyFailureError(failure('connect', `connect to ${ep.address}:${ep.port} failed: ${errorText(err)}`)));
    };
    const socket: Socket = netConnect(
      {
        host: ep.address,
        port: ep.port,
        localAddress: ep.sourceIp || undefined,
        onread: sharedReads ? SHARED_READS : undefined,
        ...SOCKET_CONSTRUCTOR_DEFAULTS,
      } as TcpNetConnectOpts,
      () => {
        signal.removeEventListener('abort', onAbort);
        socket.off('error', onError);
        socket.setNoDelay(true);
        resolve(socket);
      },
    );
    if (sharedReads) setBackendSink(socket, undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
  });
}

/** Client-side TLS over a connected socket (implicit TLS, or after a backend's STARTTLS OK). */
export function startClientTls(socket: Socket, host: string, options: ConnectionOptions, signal: Cancel): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // options.host, when set, is the name to verify (ssl_server_name) and wins over the caller's host.
    const tls = tlsConnect({ host, ...options, socket });
    const onAbort = (): void => {
      tls.destroy();
      reject(new ProxyFailureError(failure('timeout', `TLS handshake with ${host} timed out`)));
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    tls.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      tls.removeAllListeners('error');
      resolve(tls);
    });
    tls.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      tls.destroy();
      reject(new ProxyFailureError(failure('tls', `TLS with ${host} failed: ${errorText(err)}`)));
    });
  });
}

/**
 * Reads a backend socket chunk by chunk for an upstream login dialogue. `detach()` hands the
 * socket (and anything read but not consumed) over to the splice.
 */
export class BackendReader implements BackendSink {
  #socket: Socket;
  readonly #queue: Buffer[] = [];
  #waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  #closed: Error | undefined;
  #corked = false;
  readonly #signal: Cancel;
  readonly #what: string;

  constructor(socket: Socket, signal: Cancel, what: string) {
    this.#socket = socket;
    this.#signal = signal;
    this.#what = what;
    this.#attach(socket);
    // One listener for the reader's life, not one per read: EventTarget listeners are costly.
    signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  get socket(): Socket {
    return this.#socket;
  }

  /** Writes made in one turn (ID + LOGIN) leave in one segment: one syscall, one backend wake-up. */
  write(data: string | Buffer): void {
    const socket = this.#socket;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(() => {
        this.#corked = false;
        socket.uncork();
      });
    }
    socket.write(data);
  }

  /** The next chunk from the backend; throws a ProxyFailureError on close, error or timeout. */
  read(): Promise<Buffer> {
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(this.#closed);
    if (this.#signal.aborted) return Promise.reject(this.#timeout());
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Stop reading from the plaintext socket and continue over TLS (after STARTTLS). */
  async upgrade(host: string, options: ConnectionOptions): Promise<void> {
    this.#detachListeners();
    this.#queue.length = 0;
    const tls = await startClientTls(this.#socket, host, options, this.#signal);
    this.#socket = tls;
    this.#attach(tls);
  }

  /** Stop reading; return the socket and whatever was read but not consumed. */
  detach(): { socket: Socket; rest: Buffer } {
    this.#detachListeners();
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#socket.pause();
    const rest = Buffer.concat(this.#queue);
    this.#queue.length = 0;
    return { socket: this.#socket, rest };
  }

  destroy(): void {
    this.#detachListeners();
    this.#signal.removeEventListener('abort', this.#onAbort);
    this.#socket.destroy();
  }

  /** The shared read buffer is reused by the next read: what the dialogue keeps is copied. */
  backendData(chunk: Buffer): void {
    this.#onData(Buffer.from(chunk));
  }

  #attach(socket: Socket): void {
    if (hasSharedReads(socket)) setBackendSink(socket, this);
    else socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onEnd);
  }

  #detachListeners(): void {
    if (hasSharedReads(this.#socket)) setBackendSink(this.#socket, undefined);
    else this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('error', this.#onError);
    this.#socket.off('close', this.#onEnd);
  }

  readonly #onData = (chunk: Buffer): void => {
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w.resolve(chunk);
    } else {
      this.#queue.push(chunk);
    }
  };

  readonly #onAbort = (): void => {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(this.#timeout());
  };

  readonly #onEnd = (): void => this.#fail(new ProxyFailureError(failure('remote', `${this.#what} closed the connection during login`)));

  readonly #onError = (err: Error): void =>
    this.#fail(new ProxyFailureError(failure('remote', `${this.#what} connection error during login: ${errorText(err)}`)));

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#closed = err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
  }

  #timeout(): ProxyFailureError {
    return new ProxyFailureError(failure('timeout', `${this.#what} did not complete the login in time`));
  }
}

function abortable<T>(p: Promise<T>, signal: Cancel): Promise<T> {
  if (signal.aborted) return Promise.reject(new ProxyFailureError(failure('timeout', 'timed out')));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(new ProxyFailureError(failure('timeout', 'DNS lookup timed out')));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
