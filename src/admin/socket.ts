/**
 * The admin UNIX socket (`admin_socket`, mode 0600): how `portier auth cache flush` reaches the
 * running process, like doveadm talks to Dovecot's auth process. A line protocol, one command
 * per line, one reply line each: `OK [text]` or `ERR text`.
 *
 *   AUTH-CACHE-FLUSH [user]   → OK <entries dropped>
 *   AUTH-CACHE-STATS          → OK entries=N bytes=N hits=N misses=N   (OK off when disabled)
 *   PING                      → OK
 */
import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { AuthCacheStats } from '../passdb/cache.js';
import { errorText, PortierError } from '../errors.js';
import type { Logger } from '../telemetry/log.js';

/** Longest command line accepted; a client sending more is cut off. */
export const MAX_ADMIN_LINE = 4096;
/** A client idle this long is disconnected. */
const IDLE_MS = 30_000;

export interface AdminSocketHandlers {
  flushAuthCache(user: string | undefined): number | Promise<number>;
  authCacheStats(): AuthCacheStats | undefined | Promise<AuthCacheStats | undefined>;
}

/** A failure whose text is meant for the operator: sent as `ERR <message>`. */
export class AdminCommandError extends Error {}

export interface AdminSocket {
  readonly path: string;
  close(): Promise<void>;
}

export async function startAdminSocket(path: string, handlers: AdminSocketHandlers, log: Logger): Promise<AdminSocket> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
  await removeStale(path);
  const server: Server = createServer((socket) => serve(socket, handlers, log));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: unknown) => {
    throw new PortierError('LISTEN_FAILED', `cannot listen on ${path} (admin socket): ${errorText(err)}`, { cause: err });
  });
  chmodSync(path, 0o600);
  log.info({ path }, 'admin socket listening');
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        try {
          unlinkSync(path);
        } catch {
          // already gone
        }
      }),
  };
}

/** A socket file nobody answers on is left over from a crash; one that answers is in use. */
async function removeStale(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new PortierError('LISTEN_FAILED', `${path} exists and is not a socket; not touching it`);
  const answering = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answering) throw new PortierError('LISTEN_FAILED', `${path} is in use by another running portier`);
  unlinkSync(path);
}

function serve(socket: Socket, handlers: AdminSocketHandlers, log: Logger): void {
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  socket.on('error', () => undefined);
  let buffer = '';
  let busy = Promise.resolve();
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    if (buffer.length > MAX_ADMIN_LINE && !buffer.includes('\n')) {
      socket.end('ERR line too long\n');
      return;
    }
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, '');
      buffer = buffer.slice(nl + 1);
      busy = busy.then(async () => {
        const reply = await run(line, handlers).catch((err: unknown) => {
          if (err instanceof AdminCommandError) return `ERR ${err.message}`;
          log.error({ err: errorText(err) }, 'admin socket command failed');
          return 'ERR internal error';
        });
        if (!socket.destroyed) socket.write(`${reply}\n`);
      });
    }
  });
}

async function run(line: string, handlers: AdminSocketHandlers): Promise<string> {
  const sp = line.indexOf(' ');
  const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
  const arg = sp < 0 ? '' : line.slice(sp + 1).trim();
  switch (verb) {
    case 'PING':
      return 'OK';
    case 'AUTH-CACHE-FLUSH':
      return `OK ${await handlers.flushAuthCache(arg === '' ? undefined : arg)}`;
    case 'AUTH-CACHE-STATS': {
      const s = await handlers.authCacheStats();
      return s === undefined ? 'OK off' : `OK entries=${s.entries} bytes=${s.bytes} hits=${s.hits} misses=${s.misses}`;
    }
    default:
      return 'ERR unknown command';
  }
}

/** Client side for the CLI: one command, its reply line. Rejects when nothing listens. */
export async function adminRequest(path: string, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer in time'));
    }, timeoutMs);
    socket.once('connect', () => socket.write(`${command}\n`));
    socket.on('data', (d: Buffer) => {
      data += d.toString('utf8');
      const nl = data.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.end();
        resolve(data.slice(0, nl));
      }
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
