import { access, readdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { PeerProcess, systemUserIds, type PeerLifecycle } from './peer.js';
import { freePort } from './ports.js';
import type { ManagedProcess } from './procs.js';
import { runCommand, startProcess, waitFor, waitForListening } from './procs.js';
import { makeTempDir } from './tmp.js';

export interface PostgresOptions {
  /** Database created at first start; default 'portier_test'. */
  database?: string;
  /** Reuse this port; a fresh one otherwise. */
  port?: number;
  startTimeoutMs?: number;
}

export interface PgServer extends PeerLifecycle {
  readonly host: string;
  readonly port: number;
  /** Superuser; trust authentication, no password. */
  readonly user: string;
  readonly database: string;
  readonly connectionString: string;
  readonly dir: string;
  readonly dataDir: string;
  /** Fast shutdown (SIGINT): connected clients are cut off, as in an outage. */
  stop(): Promise<void>;
  /** SIGKILL postmaster and backends at once: a crash (recovery runs at the next start). */
  kill(): Promise<void>;
}

const isExecutable = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

let binDirCache: Promise<string> | undefined;

/** PostgreSQL's bin dir: $PG_BIN_DIR, else the newest /usr/lib/postgresql/N/bin, else PATH. */
export function pgBinDir(): Promise<string> {
  binDirCache ??= (async () => {
    const fromEnv = process.env['PG_BIN_DIR'];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const versions = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
    versions.sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = join('/usr/lib/postgresql', v, 'bin');
      if (await isExecutable(join(dir, 'initdb'))) return dir;
    }
    for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
      if (dir !== '' && (await isExecutable(join(dir, 'initdb'))) && (await isExecutable(join(dir, 'postgres')))) return dir;
    }
    throw new Error('PostgreSQL server binaries (initdb, postgres) not found: run `node scripts/test-deps.mjs`');
  })();
  return binDirCache;
}

interface RunAs {
  cwd: string;
  env: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
}

class PgPeer extends PeerProcess implements PgServer {
  readonly host = '127.0.0.1';
  readonly user = 'postgres';
  readonly database: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly #bin: string;
  readonly #run: RunAs;
  readonly #startTimeoutMs: number;
  #port: number;

  constructor(c: { bin: string; database: string; dir: string; port: number; run: RunAs; startTimeoutMs: number }) {
    super();
    this.#bin = c.bin;
    this.database = c.database;
    this.dir = c.dir;
    this.dataDir = join(c.dir, 'data');
    this.#port = c.port;
    this.#run = c.run;
    this.#startTimeoutMs = c.startTimeoutMs;
  }

  get port(): number {
    return this.#port;
  }

  get connectionString(): string {
    return `postgres://${this.user}@${this.host}:${this.#port}/${this.database}`;
  }

  async newPort(): Promise<void> {
    this.#port = await freePort(this.host);
  }

  protected async launch(): Promise<ManagedProcess> {
    const [host, port, dir] = [this.host, this.#port, this.dir];
    const p = await startProcess({
      name: `postgres ${host}:${port}`,
      command: join(this.#bin, 'postgres'),
      args: [
        '-D', this.dataDir,
        '-c', `listen_addresses=${host}`, '-c', `port=${port}`, '-c', `unix_socket_directories=${dir}`,
        '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
        '-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off',
      ],
      ...this.#run,
      logFile: join(dir, 'postgres.log'),
      processGroup: true,
      stopSignal: 'SIGINT',
      stopTimeoutMs: 10_000,
    });
    try {
      await waitFor('postgres to be ready', () => /ready to accept connections/.test(p.output()), this.#startTimeoutMs, { proc: p });
      await waitForListening(host, port, this.#startTimeoutMs, p);
    } catch (err) {
      await p.stop();
      throw err;
    }
    return p;
  }
}

/** initdb + postgres on 127.0.0.1:<free port>, fsync off, with database `portier_test`. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PgServer> {
  const bin = await pgBinDir();
  const host = '127.0.0.1';
  const database = opts.database ?? 'portier_test';
  const user = 'postgres';
  const asRoot = process.getuid?.() === 0;
  // initdb and postgres refuse to run as root: they run as the `postgres` system user.
  const ids = asRoot ? await systemUserIds('postgres') : undefined;
  const dir = await makeTempDir('portier-pg-', { mode: 0o700, ...(ids !== undefined ? { owner: ids } : {}) });
  const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC', HOME: dir };
  const run: RunAs = { cwd: dir, env, ...(ids ?? {}) };

  await runCommand(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], run);

  const server = new PgPeer({ bin, database, dir, port: opts.port ?? (await freePort(host)), run, startTimeoutMs: opts.startTimeoutMs ?? 20_000 });
  await server.firstStart(opts.port === undefined ? () => server.newPort() : undefined);
  await runCommand(join(bin, 'createdb'), ['-h', host, '-p', String(server.port), '-U', user, database], run);
  return server;
}
