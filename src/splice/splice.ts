/**
 * After login: client ⇄ backend, byte for byte. Backpressure: a side is paused while more than
 * login_proxy_buffer_size bytes wait for the other (so buffering stays bounded); a FIN from the
 * client is passed on and both are closed soon after; an idle limit covers both directions
 * (every byte crosses the client socket, so its timeout sees all traffic). When the backend
 * goes away the client gets the protocol's goodbye (unless the backend said one), and in a
 * storm of such closes the client disconnects are spread out.
 */
import type { Socket } from 'node:net';
import { errorText } from '../errors.js';
import type { ClientSession, EndReason } from '../login/session.js';

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
   * to see that the backend's last bytes already were one.
   */
  readonly goodbye?: { readonly text: Buffer; readonly said: (lastBytes: Buffer) => boolean } | undefined;
}

export const DEFAULT_BUFFER_SIZE = 64 * 1024;

/**
 * `from` → `to`, as pipe() does, but `from` pauses only while more than `limit` bytes wait in
 * `to`: pipe() pauses at every write not yet flushed (16 KiB), which costs a stop and a start
 * of reading for each 64 KiB chunk a bulk transfer reads. Returns a function that stops it.
 */
function pump(from: Socket, to: Socket, limit: number, end: boolean): () => void {
  let paused = false;
  const onData = (chunk: Buffer): void => {
    to.write(chunk);
    if (!paused && to.writableLength > limit) {
      paused = true;
      from.pause();
    }
  };
  // More than `limit` queued means write() said false, so 'drain' follows once it is flushed.
  const onDrain = (): void => {
    if (!paused) return;
    paused = false;
    from.resume();
  };
  const onEnd = (): void => {
    to.end();
  };
  from.on('data', onData);
  to.on('drain', onDrain);
  if (end) from.once('end', onEnd);
  return () => {
    from.off('data', onData);
    to.off('drain', onDrain);
    from.off('end', onEnd);
  };
}

export function splice(session: ClientSession, opts: SpliceOptions): void {
  const client = session.socket;
  const { backend } = opts;
  const spreader = session.runtime.disconnects;
  session.handOver({ name: opts.backendName, socket: backend });
  client.removeAllListeners('data');
  client.removeAllListeners('end');
  client.removeAllListeners('timeout');
  let reason: EndReason | undefined;
  let detail = '';
  const started = Date.now();
  const clientIn0 = client.bytesRead;
  const clientOut0 = client.bytesWritten;
  /** The backend's last bytes (at most 1 KiB), to see whether it said goodbye itself. */
  let tail: Buffer = opts.backendRest.subarray(-1024);

  const finish = (): void => {
    if (!client.destroyed) client.destroy();
    if (!backend.destroyed) backend.destroy();
  };
  let grace: NodeJS.Timeout | undefined;
  const startGrace = (ms = HALF_CLOSE_GRACE_MS): void => {
    grace ??= setTimeout(finish, ms).unref();
  };
  const ended = (r: EndReason, d = ''): void => {
    if (reason === undefined) {
      reason = r;
      detail = d;
    }
  };
  /** The backend is gone: say goodbye if it did not, then close the client (maybe later). */
  let clientClosing = false;
  let stopClientPump = (): void => {};
  const closeClient = (): void => {
    if (clientClosing) return;
    clientClosing = true;
    stopClientPump();
    client.pause();
    const delay = spreader.delayFor(opts.backendName);
    const close = (): void => {
      if (client.destroyed) return;
      if (opts.goodbye && reason !== 'client_closed' && !opts.goodbye.said(tail)) client.write(opts.goodbye.text);
      client.end();
      startGrace();
    };
    if (delay > 0) setTimeout(close, delay).unref();
    else close();
  };

  client.on('end', () => {
    ended('client_closed');
    startGrace();
  });
  backend.on('data', (chunk: Buffer) => {
    tail = chunk.length >= 1024 ? chunk.subarray(-1024) : Buffer.concat([tail, chunk]).subarray(-1024);
  });
  backend.on('end', () => {
    ended('backend_closed');
    closeClient();
  });
  client.on('error', (err) => {
    ended('client_closed', errorText(err));
    finish();
  });
  backend.on('error', (err) => {
    ended('backend_closed', errorText(err));
    closeClient();
  });
  let closed = 0;
  const onClose = (which: 'client' | 'backend'): void => {
    if (++closed === 1) {
      if (which === 'backend') {
        ended('backend_closed');
        closeClient();
      } else if (!backend.destroyed) {
        backend.end();
        startGrace();
      }
      return;
    }
    if (grace) clearTimeout(grace);
    const r = reason ?? 'client_closed';
    session.finish(r, r === 'idle_timeout' ? 'Disconnected: idle' : r === 'backend_closed' ? 'Disconnected by server' : 'Disconnected by client', {
      backend: opts.backendName,
      in: client.bytesRead - clientIn0,
      out: client.bytesWritten - clientOut0,
      spliced_ms: Date.now() - started,
      ...(detail ? { error: detail } : {}),
    });
  };
  client.once('close', () => onClose('client'));
  backend.once('close', () => onClose('backend'));

  if (opts.idleTimeoutMs > 0) {
    client.setTimeout(opts.idleTimeoutMs, () => {
      ended('idle_timeout');
      finish();
    });
  }
  if (opts.backendRest.length > 0) client.write(opts.backendRest);
  if (opts.clientRest.length > 0) backend.write(opts.clientRest);
  const limit = opts.bufferSize ?? DEFAULT_BUFFER_SIZE;
  stopClientPump = pump(client, backend, limit, true);
  pump(backend, client, limit, false);
  client.resume();
  backend.resume();
}
