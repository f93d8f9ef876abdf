import { join } from 'node:path';
import { freePort } from './ports.js';
import type { ManagedProcess } from './procs.js';
import { startProcess, waitFor, waitForListening } from './procs.js';
import { makeTempDir } from './tmp.js';

export interface RedisOptions {
  /** Reuse this port; a fresh one otherwise. */
  port?: number;
  /** Extra `--name value` arguments for redis-server. */
  extraArgs?: string[];
  startTimeoutMs?: number;
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  readonly pid: number;
  readonly running: boolean;
  output(): string;
  /** SIGTERM; nothing is persisted, so a later start() comes back empty. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Start again on the same port. */
  start(): Promise<void>;
  restart(): Promise<void>;
}

/** A private redis-server on 127.0.0.1:<free port> that keeps nothing on disk. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const host = '127.0.0.1';
  const dir = await makeTempDir('portier-redis-');
  let port = opts.port ?? (await freePort(host));
  let proc: ManagedProcess | undefined;

  const launch = async (): Promise<void> => {
    const p = await startProcess({
      name: `redis-server ${host}:${port}`,
      command: 'redis-server',
      args: [
        '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--dir', dir,
        '--daemonize', 'no', '--logfile', '', ...(opts.extraArgs ?? []),
      ],
      cwd: dir,
      logFile: join(dir, 'redis.log'),
    });
    proc = p;
    try {
      const timeout = opts.startTimeoutMs ?? 10_000;
      await waitFor('redis to be ready', () => /Ready to accept connections/.test(p.output()), timeout, { proc: p });
      await waitForListening(host, port, timeout, p);
    } catch (err) {
      await p.stop();
      throw err;
    }
  };

  // Another worker may grab the port between freePort() and bind: retry with a new one.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (opts.port !== undefined || attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err;
      port = await freePort(host);
    }
  }

  const server: RedisServer = {
    host,
    get port() {
      return port;
    },
    get url() {
      return `redis://${host}:${port}`;
    },
    dir,
    get pid() {
      return proc?.pid ?? -1;
    },
    get running() {
      return proc?.running ?? false;
    },
    output: () => proc?.output() ?? '',
    async stop() {
      await proc?.stop();
    },
    async kill() {
      await proc?.kill();
    },
    async start() {
      if (proc?.running === true) return;
      await launch();
    },
    async restart() {
      await server.stop();
      await server.start();
    },
  };
  return server;
}
