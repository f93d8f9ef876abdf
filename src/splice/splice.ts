/**
 * After login: client ⇄ backend, byte for byte. Backpressure: a side is paused while more than
 * login_proxy_buffer_size bytes wait for the other (so buffering stays bounded); a FIN from the
 * client is passed on and both are closed soon after; an idle limit covers both directions
 * (splice/idle.ts). When the backend goes away the client gets the protocol's goodbye (unless
 * the backend said one), and in a storm of such closes the client disconnects are spread out.
 *
 * One object per session and module-level listeners that find it on the socket: an idle
 * session keeps no closures (each cost a function and a scope, a dozen per session). What an
 * idle session holds beyond its two sockets is this object, the ClientSession and a few bytes
 * of the backend's last line (the goodbye check), nothing per read.
 *
 * tcp_keepalive is armed on both legs when the session first goes quiet (the idle sweep sees
 * a tick without a byte), not at the start: a session that is over within a second (a POP3
 * poll, a quick IMAP check) never pays its 8 setsockopt calls, and a quiet one is armed one
 * to two seconds after login. Without an idle limit (no sweep) it is armed at the start.
 */
import type { Socket } from 'node:net';
import { hasSharedReads, setBackendSink, type BackendSink } from '../backend/connect.js';
import { errorText } from '../errors.js';
import { ignoreSocketError, type ClientSession, type EndReason } from '../login/session.js';
import { CopyPool } from './copy-pool.js';
import { unwatchIdle, watchIdle, type IdleWatched } from './idle.js';

/** After one side ends, the other gets this long to finish its last words. */
export const HALF_CLOSE_GRACE_MS = 5000;

export interface SpliceOptions {
  readonly backend: Socket;
  readonly backendName: string;
  /** Bytes the client sent after its login command: they belong to the backend. */
  readonly clientRest: Buffer;
  /** Bytes the backend sent after its login reply: they belong to the client. */
  readonly backendRest: Buffer;
  readonly idleTimeoutMs: number;
  /** login_proxy_buffer_size: bytes that may wait for the slower side before the faster pauses. */
  readonly bufferSize?: number | undefined;
  /** The protocol's goodbye when the backend closes without one (IMAP `* BYE ...`). */
  readonly goodbye?: Goodbye | undefined;
}

/**
 * A protocol's goodbye, and how to see that the backend already said one. The splice keeps
 * only what `keep` returns between reads (a session may idle for hours), so a protocol keeps
 * the few bytes it needs, not the backend's output.
 */
export interface Goodbye {
  readonly text: Buffer;
  /**
   * What to keep after the backend's newest bytes: `kept` is the last answer (GOODBYE_START
   * before the first read, '' when bytes were skipped: `recent` then does not follow it),
   * `recent` the newest bytes (latin1, at most GOODBYE_WINDOW of one read). Return a few
   * bytes; longer only while a goodbye is being said.
   */
  keep(kept: string, recent: string): string;
  /** Whether what was kept says the backend said goodbye itself. */
  said(kept: string): boolean;
}

/** What the splice keeps after the backend's next read `chunk`: its newest GOODBYE_WINDOW bytes go to `g.keep`. */
export function keepTail(g: Goodbye, kept: string, chunk: Buffer): string {
  if (chunk.length === 0) return kept;
  if (chunk.length <= GOODBYE_WINDOW) return g.keep(kept, chunk.toString('latin1'));
  return g.keep('', chunk.toString('latin1', chunk.length - GOODBYE_WINDOW));
}

/** `kept` before the backend's first byte: the stream starts at a line start. */
export const GOODBYE_START = '\n';
/** At most this much of one read is shown to Goodbye.keep (its newest bytes). */
export const GOODBYE_WINDOW = 1024;

export const DEFAULT_BUFFER_SIZE = 64 * 1024;

/** Backend bytes from the shared read buffer are copied here before they go to the client. */
const copies = new CopyPool();

const kSplice = Symbol('portier.splice');
type SplicedSocket = Socket & { [kSplice]?: Splice };

function of(socket: Socket): Splice | undefined {
  return (socket as SplicedSocket)[kSplice];
}

export function splice(session: ClientSession, opts: SpliceOptions): void {
  new Splice(session, opts).start(opts);
}

/**
 * Backend names, shared by the sessions to one backend (a string each was ~50 bytes per
 * session). Bounded: forgotten all at once past MAX_NAMES distinct names.
 */
const names = new Map<string, string>();
const MAX_NAMES = 4096;

function sharedName(name: string): string {
  const known = names.get(name);
  if (known !== undefined) return known;
  if (names.size >= MAX_NAMES) names.clear();
  names.set(name, name);
  return name;
}

class Splice implements BackendSink, IdleWatched {
  readonly session: ClientSession;
  readonly client: Socket;
  readonly backend: Socket;
  readonly backendName: string;
  readonly goodbye: Goodbye | undefined;
  readonly limit: number;
  /** When the splice started, in ms after the session's start (a small integer, not a heap number). */
  readonly startedAfter: number;
  readonly clientIn0: number;
  readonly clientOut0: number;
  reason: EndReason | undefined;
  detail = '';
  /** What the goodbye check keeps of the backend's output (a few bytes; '' without a goodbye). */
  tail: string;
  grace: NodeJS.Timeout | undefined;
  /** client → backend still runs (stopped once the backend is gone). */
  clientPumping = true;
  clientClosing = false;
  /** The client is paused: more than `limit` bytes wait for the backend. */
  clientHeld = false;
  /** The backend is paused: more than `limit` bytes wait for the client. */
  backendHeld = false;
  closed = 0;
  /** tcp_keepalive is armed on both sockets (at the first quiet sweep). */
  keptAlive = false;
  idleActive = true;
  idleMs = 0;
  readonly idleLimitMs: number;

  constructor(session: ClientSession, opts: SpliceOptions) {
    this.session = session;
    this.client = session.socket;
    this.backend = opts.backend;
    this.backendName = sharedName(opts.backendName);
    this.goodbye = opts.goodbye;
    this.limit = opts.bufferSize ?? DEFAULT_BUFFER_SIZE;
    this.idleLimitMs = opts.idleTimeoutMs;
    this.startedAfter = Date.now() - session.startedAt;
    this.clientIn0 = this.client.bytesRead;
    this.clientOut0 = this.client.bytesWritten;
    this.tail = '';
    if (this.goodbye) this.tail = keepTail(this.goodbye, GOODBYE_START, opts.backendRest);
  }

  /** For listings (ClientSession.backend): the backend's name and socket. */
  get name(): string {
    return this.backendName;
  }

  get socket(): Socket {
    return this.backend;
  }

  start(opts: SpliceOptions): void {
    const { client, backend } = this;
    this.session.handOver(this);
    (client as SplicedSocket)[kSplice] = this;
    (backend as SplicedSocket)[kSplice] = this;
    // The pre-login input handlers go, ours come. Each of ours is added before the old ones of
    // its event are removed: an event left without listeners is a `delete` on the socket's
    // _events, which turns it into a dictionary (~450 bytes for the session's whole life).
    const oldData = client.rawListeners('data');
    const oldEnd = client.rawListeners('end');
    client.on('end', clientEnd);
    // Ours replaces the pre-login no-op (every error is handled below).
    client.on('error', clientError);
    client.off('error', ignoreSocketError);
    client.on('close', clientClose);
    client.on('data', clientData);
    client.on('drain', clientDrain);
    for (const fn of oldData) client.off('data', fn as (chunk: Buffer) => void);
    for (const fn of oldEnd) client.off('end', fn as () => void);
    client.removeAllListeners('timeout');
    backend.on('end', backendEnd);
    backend.on('error', backendError);
    backend.on('close', backendClose);
    if (hasSharedReads(backend)) setBackendSink(backend, this);
    else backend.on('data', backendData);
    backend.on('drain', backendDrain);
    if (this.idleLimitMs > 0) watchIdle(this);
    else this.wentQuiet();
    if (opts.backendRest.length > 0) client.write(opts.backendRest);
    if (opts.clientRest.length > 0) backend.write(opts.clientRest);
    client.resume();
    backend.resume();
  }

  /** From the shared read buffer (copied before the write keeps it), or from memory this splice lent. */
  backendData(chunk: Buffer, lent?: Uint8Array): void {
    this.toClient(chunk, lent === undefined ? 'shared' : lent);
  }

  /**
   * A bulk transfer: the backend's next read lands in pooled memory, written on without a
   * copy. Not while the backend is held for a slow client: a paused socket would keep the
   * lent slab on top of what waits for the client.
   */
  lend(): Uint8Array | undefined {
    return this.backendHeld ? undefined : copies.lend();
  }

  /** `from`: 'own' (the write may keep the chunk), 'shared' (copy it first), or the lent buffer it is in. */
  toClient(chunk: Buffer, from: 'own' | 'shared' | Uint8Array): void {
    if (this.goodbye) this.tail = keepTail(this.goodbye, this.tail, chunk);
    this.idleActive = true;
    const client = this.client;
    if (from === 'own') {
      client.write(chunk);
    } else {
      const { chunk: pooled, done } = from === 'shared' ? copies.copy(chunk) : copies.adopt(from, chunk.length);
      client.write(pooled, done);
    }
    if (!this.backendHeld && client.writableLength > this.limit) {
      // More than `limit` queued means write() said false, so 'drain' follows once it is flushed.
      this.backendHeld = true;
      this.backend.pause();
    }
  }

  toBackend(chunk: Buffer): void {
    if (!this.clientPumping) return;
    this.idleActive = true;
    const backend = this.backend;
    backend.write(chunk);
    if (!this.clientHeld && backend.writableLength > this.limit) {
      this.clientHeld = true;
      this.client.pause();
    }
  }

  clientDrained(): void {
    this.idleActive = true;
    if (!this.backendHeld) return;
    this.backendHeld = false;
    this.backend.resume();
  }

  backendDrained(): void {
    if (!this.clientHeld || !this.clientPumping) return;
    this.clientHeld = false;
    this.client.resume();
  }

  ended(r: EndReason, d = ''): void {
    if (this.reason === undefined) {
      this.reason = r;
      this.detail = d;
    }
  }

  finish(): void {
    if (!this.client.destroyed) this.client.destroy();
    if (!this.backend.destroyed) this.backend.destroy();
  }

  startGrace(ms = HALF_CLOSE_GRACE_MS): void {
    this.grace ??= setTimeout(graceOver, ms, this).unref();
  }

  /** The client said FIN: pass it on, and close both if the backend does not finish. */
  clientEnded(): void {
    this.ended('client_closed');
    this.startGrace();
    if (this.clientPumping) this.backend.end();
  }

  /** The backend is gone: say goodbye if it did not, then close the client (maybe later). */
  closeClient(): void {
    if (this.clientClosing) return;
    this.clientClosing = true;
    this.clientPumping = false;
    this.client.pause();
    const delay = this.session.runtime.disconnects.delayFor(this.backendName);
    if (delay > 0) setTimeout(closeClientNow, delay, this).unref();
    else this.closeClientNow();
  }

  closeClientNow(): void {
    const client = this.client;
    if (client.destroyed) return;
    if (this.goodbye && this.reason !== 'client_closed' && !this.goodbye.said(this.tail)) client.write(this.goodbye.text);
    client.end();
    this.startGrace();
  }

  /** From the idle sweep: the session has gone quiet; from now on a vanished peer is looked for. */
  wentQuiet(): void {
    if (this.keptAlive) return;
    this.keptAlive = true;
    const ms = this.session.runtime.config.tcp_keepalive;
    if (ms <= 0) return;
    // A peer (or a NAT between) that vanishes without a FIN is found by the kernel's probes.
    if (!this.client.destroyed) this.client.setKeepAlive(true, ms);
    if (!this.backend.destroyed) this.backend.setKeepAlive(true, ms);
  }

  idleExpired(): void {
    this.ended('idle_timeout');
    this.finish();
  }

  onClose(which: 'client' | 'backend'): void {
    if (++this.closed === 1) {
      if (which === 'backend') {
        this.ended('backend_closed');
        this.closeClient();
      } else if (!this.backend.destroyed) {
        this.backend.end();
        this.startGrace();
      }
      return;
    }
    if (this.grace) clearTimeout(this.grace);
    unwatchIdle(this);
    const r = this.reason ?? 'client_closed';
    const client = this.client;
    this.session.finish(r, r === 'idle_timeout' ? 'Disconnected: idle' : r === 'backend_closed' ? 'Disconnected by server' : 'Disconnected by client', {
      backend: this.backendName,
      in: client.bytesRead - this.clientIn0,
      out: client.bytesWritten - this.clientOut0,
      spliced_ms: Date.now() - this.session.startedAt - this.startedAfter,
      ...(this.detail ? { error: this.detail } : {}),
    });
  }
}

function graceOver(sp: Splice): void {
  sp.finish();
}

function closeClientNow(sp: Splice): void {
  sp.closeClientNow();
}

function clientData(this: Socket, chunk: Buffer): void {
  of(this)?.toBackend(chunk);
}

function clientDrain(this: Socket): void {
  of(this)?.clientDrained();
}

function clientEnd(this: Socket): void {
  of(this)?.clientEnded();
}

function clientError(this: Socket, err: Error): void {
  const sp = of(this);
  if (sp === undefined) return;
  sp.ended('client_closed', errorText(err));
  sp.finish();
}

function clientClose(this: Socket): void {
  of(this)?.onClose('client');
}

/** A TLS backend's chunks are its own (not from the shared read buffer). */
function backendData(this: Socket, chunk: Buffer): void {
  of(this)?.toClient(chunk, 'own');
}

function backendDrain(this: Socket): void {
  of(this)?.backendDrained();
}

function backendEnd(this: Socket): void {
  const sp = of(this);
  if (sp === undefined) return;
  sp.ended('backend_closed');
  sp.closeClient();
}

function backendError(this: Socket, err: Error): void {
  const sp = of(this);
  if (sp === undefined) return;
  sp.ended('backend_closed', errorText(err));
  sp.closeClient();
}

function backendClose(this: Socket): void {
  of(this)?.onClose('backend');
}
