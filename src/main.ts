/**
 * The `portier` command: `serve`, `check-config`, and room for more verbs. Operator errors
 * (bad config, busy port) print one clear message and exit non-zero, never a stack trace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Command, CommanderError } from 'commander';
import { authCacheFlush, authTest, pw } from './admin/cli-auth.js';
import { serveAdminToPrimary, startClusterAdminSocket } from './admin/cluster-admin.js';
import type { AdminSocket } from './admin/socket.js';
import { defaultConfigFile, loadConfig, type LoadedConfig } from './config/load.js';
import { printConfig } from './config/print.js';
import { isClusterWorker, reportToPrimary, runPrimary, shareMetrics } from './cluster.js';
import { ConfigError, errorText, PortierError } from './errors.js';
import { Portier } from './server.js';
import { createLogger } from './telemetry/log.js';

const SYSTEM_CONFIG = '/etc/portier/portier.yaml';

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** -c FILE, else $PORTIER_CONFIG, else /etc/portier/portier.yaml, else the embedded default. */
export function configFile(option: string | undefined): string {
  if (option !== undefined) return option;
  const env = process.env['PORTIER_CONFIG'];
  if (env !== undefined && env !== '') return env;
  return existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : defaultConfigFile();
}

export async function run(argv: readonly string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('portier')
    .description('A login proxy for IMAP, POP3 and LMTP in the manner of Dovecot\'s proxy')
    .version(version(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('serve')
    .description('run the proxy until SIGTERM/SIGINT (SIGHUP reloads the configuration)')
    .option('-c, --config <file>', 'configuration file')
    .action(async (opts: { config?: string }) => {
      exitCode = await serve(configFile(opts.config));
    });

  program
    .command('check-config')
    .description('validate the configuration and print it with secrets masked (like doveconf -n / nginx -t)')
    .option('-c, --config <file>', 'configuration file')
    .option('-n, --non-default', 'print only settings that differ from the defaults')
    .action((opts: { config?: string; nonDefault?: boolean }) => {
      const file = configFile(opts.config);
      const loaded = tryLoad(file);
      if (loaded === null) {
        exitCode = 1;
        return;
      }
      process.stdout.write(`# ${loaded.file}\n${printConfig(loaded.config, opts.nonDefault === true)}`);
      process.stderr.write(`portier: configuration ${loaded.file} is valid\n`);
    });

  const collect = (v: string, all: string[]): string[] => [...all, v];
  const auth = program.command('auth').description('test passdbs and manage the auth cache (like doveadm auth)');
  auth
    .command('test <user> [password]')
    .description('run the configured passdb chain for USER (and verify PASSWORD); exit 0 ok, 1 failed, 2 temporary failure')
    .option('-c, --config <file>', 'configuration file')
    .option('-x, --info <key=value>', 'request facts: service, rip, lip, rport, lport, local_name (repeatable)', collect, [])
    .action(async (user: string, password: string | undefined, opts: { config?: string; info: string[] }) => {
      exitCode = await authTest(configFile(opts.config), user, password, { info: opts.info });
    });
  auth
    .command('lookup <user>')
    .description('look USER up without a password and print the fields (secrets masked)')
    .option('-c, --config <file>', 'configuration file')
    .option('-x, --info <key=value>', 'request facts: service, rip, lip, rport, lport, local_name (repeatable)', collect, [])
    .action(async (user: string, opts: { config?: string; info: string[] }) => {
      exitCode = await authTest(configFile(opts.config), user, undefined, { info: opts.info, lookup: true });
    });
  auth
    .command('cache')
    .description('the running process\'s auth cache')
    .command('flush [user]')
    .description('drop all cached passdb results, or those of USER, in the running portier (through admin_socket)')
    .option('-c, --config <file>', 'configuration file (to find admin_socket)')
    .option('-s, --socket <path>', 'admin socket path (default: admin_socket from the configuration)')
    .action(async (user: string | undefined, opts: { config?: string; socket?: string }) => {
      exitCode = await authCacheFlush(configFile(opts.config), user, opts.socket);
    });

  program
    .command('pw')
    .description('make a stored password {SCHEME}value, like doveadm pw (reads the password from the terminal or stdin)')
    .option('-s, --scheme <scheme>', 'password scheme (default CRYPT, i.e. bcrypt)')
    .option('-p, --password <password>', 'the password (visible to other users in ps: prefer the prompt or stdin)')
    .option('-u, --user <user>', 'user name, for schemes that hash it in (DIGEST-MD5)')
    .option('-r, --rounds <n>', 'cost: crypt rounds, bcrypt cost, argon2 passes, PBKDF2/SCRAM iterations')
    .option('-t, --test <stored>', 'check the password against this stored value instead')
    .option('--verify', 'verify the new value before printing it (doveadm pw -V)')
    .option('-l, --list', 'list the known schemes')
    .action(async (opts: { scheme?: string; password?: string; user?: string; rounds?: string; test?: string; verify?: boolean; list?: boolean }) => {
      exitCode = await pw(opts);
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  return exitCode;
}

function tryLoad(file: string): LoadedConfig | null {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portier: configuration is invalid:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
      return null;
    }
    throw err;
  }
}

async function serve(file: string): Promise<number> {
  const loaded = tryLoad(file);
  if (loaded === null) return 1;
  const log = createLogger({ level: loaded.config.log_level, instance: loaded.config.instance_name });
  const workers = loaded.config.workers === 'auto' ? availableParallelism() : loaded.config.workers;
  const worker = isClusterWorker();
  if (loaded.file === defaultConfigFile() && !worker) {
    log.warn('running on the embedded development configuration: its TLS certificate and demo users are not for production');
  }
  if (workers > 1 && !worker) {
    // Workers keep the auth caches; the primary relays `portier auth cache flush` to them all.
    let admin: AdminSocket | undefined;
    if (loaded.config.admin_socket !== '') {
      admin = await startClusterAdminSocket(loaded.config.admin_socket, log).catch((err: unknown) => {
        log.error({ err: errorText(err) }, 'admin socket not available; `portier auth cache flush` cannot reach the workers');
        return undefined;
      });
    }
    const code = await runPrimary(loaded, workers, log);
    await admin?.close();
    return code;
  }
  let portier: Portier;
  try {
    portier = new Portier(loaded, log, { adminHttp: !worker });
    await portier.start();
  } catch (err) {
    const text = err instanceof PortierError ? err.message : errorText(err);
    if (worker) reportToPrimary({ type: 'portier:failed', error: text });
    else process.stderr.write(`portier: cannot start: ${text}\n`);
    log.fatal({ err: text }, 'cannot start');
    log.flush();
    return 1;
  }
  if (worker) {
    serveAdminToPrimary({ flushAuthCache: (user) => portier.runtime.passdbs.flushCache(user), authCacheStats: () => portier.runtime.passdbs.cacheStats() });
    shareMetrics(portier.metrics.registry);
    reportToPrimary({ type: 'portier:ready' });
  }
  log.info({ version: version(), config: loaded.file }, worker ? 'worker started' : 'portier started');
  const code = await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      void portier.stop().then(
        () => {
          log.info('stopped');
          log.flush();
          resolve(0);
        },
        (err: unknown) => {
          log.error({ err: errorText(err) }, 'error while stopping');
          log.flush();
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      try {
        portier.reload(loadConfig(loaded.file));
      } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [errorText(err)];
        portier.reloadFailed();
        log.error({ problems }, 'reload failed; keeping the running configuration');
      }
    });
  });
  // A worker's channel to the primary would keep it alive after stopping.
  if (worker) process.disconnect?.();
  return code;
}
