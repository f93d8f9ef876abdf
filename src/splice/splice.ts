/**
 * After login: client ⇄ backend, byte for byte. Backpressure comes from pipe() (a slow reader
 * pauses the other side, so buffering stays at the sockets' high-water marks); a FIN from one
 * side is passed on and both are closed soon after; an idle limit covers both directions
 * (every byte crosses the client socket, so its timeout sees all traffic).
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
}

export function splice(session: ClientSession, opts: SpliceOptions): void {
  const client = session.socket;
  const { backend } = opts;
  session.handOver({ name: opts.backendName, socket: backend });
  client.removeAllListeners('data');
  client.removeAllListeners('end');
  client.removeAllListeners('timeout');
  let reason: EndReason | undefined;
  let detail = '';
  const started = Date.now();
  const clientIn0 = client.bytesRead;
  const clientOut0 = client.bytesWritten;

  const finish = (): void => {
    if (!client.destroyed) client.destroy();
    if (!backend.destroyed) backend.destroy();
  };
  let grace: NodeJS.Timeout | undefined;
  const startGrace = (): void => {
    grace ??= setTimeout(finish, HALF_CLOSE_GRACE_MS).unref();
  };
  const ended = (r: EndReason, d = ''): void => {
    if (reason === undefined) {
      reason = r;
      detail = d;
    }
  };

  client.on('end', () => {
    ended('client_closed');
    startGrace();
  });
  backend.on('end', () => {
    ended('backend_closed');
    startGrace();
  });
  client.on('error', (err) => {
    ended('client_closed', errorText(err));
    finish();
  });
  backend.on('error', (err) => {
    ended('backend_closed', errorText(err));
    finish();
  });
  let closed = 0;
  const onClose = (): void => {
    if (++closed === 1) {
      // One side is gone: give the other its buffered bytes, then close it too.
      startGrace();
      if (!client.destroyed) client.end();
      if (!backend.destroyed) backend.end();
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
  client.once('close', onClose);
  backend.once('close', onClose);

  if (opts.idleTimeoutMs > 0) {
    client.setTimeout(opts.idleTimeoutMs, () => {
      ended('idle_timeout');
      finish();
    });
  }
  if (opts.backendRest.length > 0) client.write(opts.backendRest);
  if (opts.clientRest.length > 0) backend.write(opts.clientRest);
  client.pipe(backend);
  backend.pipe(client);
  client.resume();
  backend.resume();
}
