/**
 * `workers` > 1: identical worker processes (node:cluster), each a whole portier, sharing the
 * listening sockets; the kernel spreads connections (SCHED_NONE: no per-connection IPC).
 * The primary only supervises: it restarts crashed workers, forwards SIGHUP/SIGTERM, and
 * serves the admin HTTP port with metrics aggregated over all workers.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { startAdminHttp, type AdminHttp } from './admin/http.js';
import type { LoadedConfig } from './config/load.js';
import { errorText } from './errors.js';
import type { Logger } from './telemetry/log.js';
import { shareTicketSecretWithWorkers } from './tls/tickets.js';

/** Messages a worker sends to the primary. */
export type WorkerMessage = { readonly type: 'portier:ready' } | { readonly type: 'portier:failed'; readonly error: string };

const RESTART_DELAY_MS = 1000;

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** In a worker: tell the primary how starting went. */
export function reportToPrimary(message: WorkerMessage): void {
  if (cluster.isWorker) process.send?.(message);
}

/** Run the primary until SIGTERM/SIGINT; resolves with the exit code. */
export async function runPrimary(loaded: LoadedConfig, count: number, log: Logger): Promise<number> {
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // Workers resume each other's TLS sessions: a reconnecting client may land on any of them.
  shareTicketSecretWithWorkers();
  const aggregator = new AggregatorRegistry();
  const ready = new Set<number>();
  let stopping = false;
  let admin: AdminHttp | undefined;

  // Signals first: a SIGTERM that arrives while workers are still starting must stop cleanly.
  let requested: string | undefined;
  let onStop: ((signal: string) => void) | undefined;
  const request = (signal: string): void => {
    requested ??= signal;
    onStop?.(signal);
  };
  process.on('SIGTERM', () => request('SIGTERM'));
  process.on('SIGINT', () => request('SIGINT'));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });

  const fork = (): Worker => {
    const w = cluster.fork();
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'portier:ready') ready.add(w.id);
    });
    return w;
  };

  // Start every worker; if one cannot start (port busy, bad certificate), stop all.
  const started = await new Promise<string | null>((resolve) => {
    let pending = count;
    for (let i = 0; i < count; i++) {
      const w = fork();
      const onMessage = (m: WorkerMessage): void => {
        if (m.type === 'portier:failed') resolve(m.error);
        else if (--pending === 0) resolve(null);
      };
      w.once('message', onMessage);
      w.once('exit', (code) => resolve(`worker exited during start (code ${code ?? 'signal'})`));
    }
  });
  if (started !== null) {
    stopping = true;
    process.stderr.write(`portier: cannot start: ${started}\n`);
    await stopWorkers();
    return 1;
  }

  cluster.on('exit', (worker, code, signal) => {
    ready.delete(worker.id);
    if (stopping) return;
    log.error({ worker: worker.process.pid, code, signal }, 'worker died; starting a new one');
    setTimeout(() => {
      if (!stopping) fork();
    }, RESTART_DELAY_MS).unref();
  });

  if (loaded.config.admin_listen !== undefined) {
    try {
      admin = await startAdminHttp(
        loaded.config.admin_listen,
        {
          metrics: async () => ({ contentType: aggregator.contentType, body: await (await aggregator.clusterMetrics()).toString() }),
          ready: () => !stopping && ready.size === Object.keys(cluster.workers ?? {}).length && ready.size > 0,
        },
        log,
      );
    } catch (err) {
      process.stderr.write(`portier: cannot start: ${errorText(err)}\n`);
      stopping = true;
      await stopWorkers();
      return 1;
    }
  }
  log.info({ workers: count }, 'portier started');

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      void Promise.all([admin?.close(), stopWorkers()]).then(() => {
        log.info('stopped');
        log.flush();
        resolve(0);
      });
    };
    onStop = stop;
    if (requested !== undefined) stop(requested);
  });

  function stopWorkers(): Promise<void> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    return Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((done) => {
            if (w.isDead()) return done();
            w.once('exit', () => done());
            w.process.kill('SIGTERM');
          }),
      ),
    ).then(() => undefined);
  }
}

/** In a worker: serve this worker's registry to the primary's aggregator. */
export function shareMetrics(registry: import('prom-client').Registry): void {
  // Constructing one installs prom-client's worker-side listener for the primary's requests.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
}
