import { access, readdir, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
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

export interface PgServer {
  readonly host: string;
  readonly port: number;
  /** Superuser; trust authentication, no password. */
  readonly user: string;
  readonly database: string;
  readonly connectionString: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly pid: number;
  readonly running: boolean;
  /** Server output (stderr log) of the current run. */
  output(): string;
  /** Fast shutdown (SIGINT): connected clients are cut off, as in an outage. */
  stop(): Promise<void>;
  /** SIGKILL postmaster and backends at once: a crash (recovery runs at the next start). */
  kill(): Promise<void>;
  /** Start again on the same port and data dir. */
  start(): Promise<void>;
  restart(): Promise<void>;
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

let postgresIdsCache: Promise<{ uid: number; gid: number }> | undefined;

/** initdb and postgres refuse to run as root: they run as the `postgres` system user. */
function postgresIds(): Promise<{ uid: number; gid: number }> {
  postgresIdsCache ??= readFile('/etc/passwd', 'utf8').then((text) => {
    const f = text.split('\n').find((l) => l.startsWith('postgres:'))?.split(':');
    if (f === undefined || f[2] === undefined || f[3] === undefined) throw new Error('no `postgres` user in /etc/passwd');
    return { uid: Number(f[2]), gid: Number(f[3]) };
  });
  return postgresIdsCache;
}

/** initdb + postgres on 127.0.0.1:<free port>, fsync off, with database `portier_test`. */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PgServer> {
  const bin = await pgBinDir();
  const host = '127.0.0.1';
  const database = opts.database ?? 'portier_test';
  const user = 'postgres';
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? await postgresIds() : undefined;
  const dir = await makeTempDir('portier-pg-', { mode: 0o700, ...(ids !== undefined ? { owner: ids } : {}) });
  const dataDir = join(dir, 'data');
  const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC', HOME: dir };
  const run = { cwd: dir, env, ...(ids ?? {}) };

  await runCommand(join(bin, 'initdb'), ['-D', dataDir, '-U', user, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'], run);

  let port = opts.port ?? (await freePort(host));
  let proc: ManagedProcess | undefined;
  const launch = async (): Promise<void> => {
    const p = await startProcess({
      name: `postgres ${host}:${port}`,
      command: join(bin, 'postgres'),
      args: [
        '-D', dataDir,
        '-c', `listen_addresses=${host}`, '-c', `port=${port}`, '-c', `unix_socket_directories=${dir}`,
        '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
        '-c', 'max_connections=100', '-c', 'shared_buffers=32MB', '-c', 'logging_collector=off',
      ],
      ...run,
      logFile: join(dir, 'postgres.log'),
      processGroup: true,
      stopSignal: 'SIGINT',
      stopTimeoutMs: 10_000,
    });
    proc = p;
    try {
      const timeout = opts.startTimeoutMs ?? 20_000;
      await waitFor('postgres to be ready', () => /ready to accept connections/.test(p.output()), timeout, { proc: p });
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
  await runCommand(join(bin, 'createdb'), ['-h', host, '-p', String(port), '-U', user, database], run);

  const server: PgServer = {
    host,
    get port() {
      return port;
    },
    user,
    database,
    get connectionString() {
      return `postgres://${user}@${host}:${port}/${database}`;
    },
    dir,
    dataDir,
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
