/**
 * Start portier in-process from YAML text, on free ports (port 0), with its JSON log lines
 * captured for assertions. Also: run the real `bin/portier.js` as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../src/config/load.js';
import { Portier } from '../../src/server.js';
import { createLogger } from '../../src/telemetry/log.js';
import { freePort } from './ports.js';
import { makeTempDir } from './tmp.js';

export interface LogLine {
  level: string;
  msg: string;
  session?: string;
  [key: string]: unknown;
}

export interface RunningPortier {
  readonly portier: Portier;
  readonly dir: string;
  port(listener: string): number;
  /** Raw log output so far (JSON lines). */
  logText(): string;
  logs(): LogLine[];
  /** The first log line (by position) that `pred` accepts. */
  waitForLog(pred: (l: LogLine, index: number) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

/**
 * `yaml` may use `{{dir}}` for the instance's temp dir (users files, certs) and `{{port}}`
 * wherever a fresh free port is wanted (each occurrence gets its own; `port: 0` switches a
 * listener off, as in Dovecot).
 */
export async function startPortier(yaml: string, files: Record<string, string> = {}): Promise<RunningPortier> {
  const dir = await makeTempDir('portier-');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  let text = withTestDefaults(yaml).replaceAll('{{dir}}', dir);
  while (text.includes('{{port}}')) text = text.replace('{{port}}', String(await freePort('127.0.0.1')));
  const file = join(dir, 'portier.yaml');
  writeFileSync(file, text);
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const loaded = parseConfig(text, file);
  const log = createLogger({ level: loaded.config.log_level, instance: 'test', destination });
  const portier = new Portier(loaded, log);
  await portier.start();
  const parse = (): LogLine[] =>
    chunks.join('').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine);
  return {
    portier,
    dir,
    port(listener) {
      const a = portier.addresses().find((x) => x.name === listener);
      if (!a) throw new Error(`no listener ${listener}`);
      return a.port;
    },
    logText: () => chunks.join(''),
    logs: parse,
    async waitForLog(pred, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = parse().find(pred);
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`log line not seen within ${timeoutMs} ms:\n${chunks.join('')}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => portier.stop(2000),
  };
}

/**
 * Settings a test gets unless it names them: the auth penalty off (tests log in wrongly from one
 * address again and again; the penalty has tests of its own), no per user+IP session cap (tests
 * hold many sessions of one user from 127.0.0.5; the cap has its own tests) and an admin socket
 * in the temp dir (instances run side by side).
 */
const TEST_DEFAULTS: Readonly<Record<string, string>> = {
  auth_penalty_max_delay: '0',
  mail_max_userip_connections: '0',
  admin_socket: '{{dir}}/admin.sock',
};

function withTestDefaults(yaml: string): string {
  const extra = Object.entries(TEST_DEFAULTS)
    .filter(([key]) => !new RegExp(`^${key}:`, 'm').test(yaml))
    .map(([key, value]) => `${key}: ${value}\n`);
  return extra.join('') + yaml;
}

export interface PortierProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

const BIN = new URL('../../bin/portier.js', import.meta.url).pathname;

/** The real command, as an operator runs it (needs `npm run build`, which `npm test` does). */
export function runPortierBin(args: string[], env: NodeJS.ProcessEnv = {}): PortierProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}
