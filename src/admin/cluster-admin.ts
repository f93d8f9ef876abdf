/**
 * The admin socket with `workers` > 1: workers hold the auth caches but serve no admin socket,
 * so the primary listens on `admin_socket` and relays each command to every worker over the
 * cluster IPC channel, adding up the answers. A worker that does not answer in time makes the
 * command fail loudly (the operator must know a cache may still hold old entries).
 */
import cluster, { type Worker } from 'node:cluster';
import type { AuthCacheStats } from '../passdb/cache.js';
import type { Logger } from '../telemetry/log.js';
import { AdminCommandError, startAdminSocket, type AdminSocket, type AdminSocketHandlers } from './socket.js';

/** How long the primary waits for every worker's answer. */
const WORKER_ANSWER_MS = 3000;

type AdminCommand = { readonly command: 'auth-cache-flush'; readonly user?: string } | { readonly command: 'auth-cache-stats' };
interface AdminRequestMessage {
  readonly type: 'portier:admin';
  readonly id: number;
  readonly request: AdminCommand;
}
interface AdminReplyMessage {
  readonly type: 'portier:admin-reply';
  readonly id: number;
  readonly count?: number;
  readonly stats?: AuthCacheStats | null;
}

function isMessage<T extends { type: string }>(m: unknown, type: T['type']): m is T {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
}

/** In a worker: answer the primary's admin commands from this worker's runtime. */
export function serveAdminToPrimary(handlers: { flushAuthCache(user: string | undefined): number; authCacheStats(): AuthCacheStats | undefined }): void {
  process.on('message', (m: unknown) => {
    if (!isMessage<AdminRequestMessage>(m, 'portier:admin')) return;
    const reply: AdminReplyMessage =
      m.request.command === 'auth-cache-flush'
        ? { type: 'portier:admin-reply', id: m.id, count: handlers.flushAuthCache(m.request.user) }
        : { type: 'portier:admin-reply', id: m.id, stats: handlers.authCacheStats() ?? null };
    process.send?.(reply);
  });
}

/** In the primary: the admin socket, relaying to every live worker. */
export async function startClusterAdminSocket(path: string, log: Logger): Promise<AdminSocket> {
  let next = 1;
  const ask = async (request: AdminCommand): Promise<AdminReplyMessage[]> => {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
    const id = next++;
    const answers = await Promise.all(workers.map((w) => askOne(w, { type: 'portier:admin', id, request })));
    const got = answers.filter((a): a is AdminReplyMessage => a !== undefined);
    if (got.length < workers.length) {
      log.error({ answered: got.length, workers: workers.length, command: request.command }, 'admin: not every worker answered');
      throw new AdminCommandError(`${workers.length - got.length} of ${workers.length} workers did not answer`);
    }
    return got;
  };
  const handlers: AdminSocketHandlers = {
    async flushAuthCache(user) {
      const answers = await ask(user === undefined ? { command: 'auth-cache-flush' } : { command: 'auth-cache-flush', user });
      return answers.reduce((n, a) => n + (a.count ?? 0), 0);
    },
    async authCacheStats() {
      const all = (await ask({ command: 'auth-cache-stats' })).flatMap((a) => (a.stats ? [a.stats] : []));
      if (all.length === 0) return undefined;
      return all.reduce((s, x) => ({ entries: s.entries + x.entries, bytes: s.bytes + x.bytes, hits: s.hits + x.hits, misses: s.misses + x.misses }));
    },
  };
  return startAdminSocket(path, handlers, log);
}

function askOne(w: Worker, message: AdminRequestMessage): Promise<AdminReplyMessage | undefined> {
  return new Promise((resolve) => {
    const done = (r: AdminReplyMessage | undefined): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('exit', onExit);
      resolve(r);
    };
    const onMessage = (m: unknown): void => {
      if (isMessage<AdminReplyMessage>(m, 'portier:admin-reply') && m.id === message.id) done(m);
    };
    const onExit = (): void => done(undefined);
    const timer = setTimeout(() => done(undefined), WORKER_ANSWER_MS);
    w.on('message', onMessage);
    w.once('exit', onExit);
    w.send(message);
  });
}
