import { join } from 'node:path';
import { PeerProcess, type PeerLifecycle } from './peer.js';
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

export interface RedisServer extends PeerLifecycle {
  readonly host: string;
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGTERM; nothing is persisted, so a later start() comes back empty. */
  stop(): Promise<void>;
}

class RedisPeer extends PeerProcess implements RedisServer {
  readonly host = '127.0.0.1';
  readonly dir: string;
  readonly #opts: RedisOptions;
  #port: number;

  constructor(dir: string, port: number, opts: RedisOptions) {
    super();
    this.dir = dir;
    this.#port = port;
    this.#opts = opts;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://${this.host}:${this.#port}`;
  }

  async newPort(): Promise<void> {
    this.#port = await freePort(this.host);
  }

  protected async launch(): Promise<ManagedProcess> {
    const [host, port, dir] = [this.host, this.#port, this.dir];
    const p = await startProcess({
      name: `redis-server ${host}:${port}`,
      command: 'redis-server',
      args: [
        '--port', String(port), '--bind', host, '--save', '', '--appendonly', 'no', '--dir', dir,
        '--daemonize', 'no', '--logfile', '', ...(this.#opts.extraArgs ?? []),
      ],
      cwd: dir,
      logFile: join(dir, 'redis.log'),
    });
    try {
      const timeout = this.#opts.startTimeoutMs ?? 10_000;
      await waitFor('redis to be ready', () => /Ready to accept connections/.test(p.output()), timeout, { proc: p });
      await waitForListening(host, port, timeout, p);
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }
}

/** A private redis-server on 127.0.0.1:<free port> that keeps nothing on disk. */
export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const dir = await makeTempDir('portier-redis-');
  const server = new RedisPeer(dir, opts.port ?? (await freePort('127.0.0.1')), opts);
  await server.firstStart(opts.port === undefined ? () => server.newPort() : undefined);
  return server;
}
