/**
 * After login: client ⇄ backend, byte for byte. Backpressure: a side is paused while more than
 * login_proxy_buffer_size bytes wait for the other (so buffering stays bounded); a FIN from the
 * client is passed on and both are closed soon after; an idle limit covers both directions
 * (splice/idle.ts). When the backend goes away the client gets the protocol's goodbye (unless
 * the backend said one), and in a storm of such closes the client disconnects are spread out.
 *
 * One object per session and module-level listeners that find it on the socket: an idle
 * session keeps no closures (each cost a function and a scope, a dozen per session).
 */
import type { Socket } from 'node:net';
import { hasSharedReads, setBackendSink, type BackendSink } from '../backend/connect.js';
import { errorText } from '../errors.js';
import { ignoreSocketError, type ClientSession, type EndReason } from '../login/session.js';
import type { DisconnectSpreader } from './spread.js';
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
  /**
   * The protocol's goodbye when the backend closes without one (IMAP `* BYE ...`), and how
   * to see that the backend's last bytes (latin1, at most 1 KiB) already were one.
   */
  readonly goodbye?: { readonly text: Buffer; readonly said: (lastBytes: string) => boolean } | undefined;
}

export const DEFAULT_BUFFER_SIZE = 64 * 1024;
const TAIL = 1024;

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

class Splice implements BackendSink, IdleWatched {
  readonly session: ClientSession;
  readonly client: Socket;
  readonly backend: Socket;
  readonly backendName: string;
  readonly goodbye: SpliceOptions['goodbye'];
  readonly spreader: DisconnectSpreader;
  readonly limit: number;
  readonly started = Date.now();
  readonly clientIn0: number;
  readonly clientOut0: number;
  reason: EndReason | undefined;
  detail = '';
  /** The backend's last bytes (at most 1 KiB, latin1), to see whether it said goodbye itself. */
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
  idleActive = true;
  idleMs = 0;
  readonly idleLimitMs: number;

  constructor(session: ClientSession, opts: SpliceOptions) {
    this.session = session;
    this.client = session.socket;
    this.backend = opts.backend;
    this.backendName = opts.backendName;
    this.goodbye = opts.goodbye;
    this.spreader = session.runtime.disconnects;
    this.limit = opts.bufferSize ?? DEFAULT_BUFFER_SIZE;
    this.idleLimitMs = opts.idleTimeoutMs;
    this.clientIn0 = this.client.bytesRead;
    this.clientOut0 = this.client.bytesWritten;
    this.tail = opts.backendRest.toString('latin1', Math.max(0, opts.backendRest.length - TAIL));
  }

  start(opts: SpliceOptions): void {
    const { client, backend } = this;
    this.session.handOver({ name: opts.backendName, socket: backend });
    client.removeAllListeners('data');
    client.removeAllListeners('end');
    client.removeAllListeners('timeout');
    // Ours replaces the pre-login no-op (every error is handled below).
    client.off('error', ignoreSocketError);
    (client as SplicedSocket)[kSplice] = this;
    (backend as SplicedSocket)[kSplice] = this;
    client.on('end', clientEnd);
    client.on('error', clientError);
    client.on('close', clientClose);
    client.on('data', clientData);
    client.on('drain', clientDrain);
    backend.on('end', backendEnd);
    backend.on('error', backendError);
    backend.on('close', backendClose);
    if (hasSharedReads(backend)) setBackendSink(backend, this);
    else backend.on('data', backendData);
    backend.on('drain', backendDrain);
    if (this.idleLimitMs > 0) watchIdle(this);
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
    this.tail = chunk.length >= TAIL ? chunk.toString('latin1', chunk.length - TAIL) : (this.tail + chunk.toString('latin1')).slice(-TAIL);
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
    const delay = this.spreader.delayFor(this.backendName);
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
      spliced_ms: Date.now() - this.started,
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
