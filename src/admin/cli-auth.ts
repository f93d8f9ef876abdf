/**
 * Operator verbs around authentication, after doveadm's: `auth test` / `auth lookup` run the
 * configured passdb chain in this process (no running server needed), `auth cache flush`
 * reaches the running one through the admin socket, and `pw` makes and checks stored passwords.
 * Output is for people; secrets (`password`, `pass`, ...) are always masked.
 * Exit codes: 0 ok, 1 failed (or usage), 2 temporary failure.
 */
import { createInterface } from 'node:readline';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { PROTOCOLS, type Config, type Protocol } from '../config/schema.js';
import { ConfigError, errorText, PortierError } from '../errors.js';
import { normalizeUser } from '../login/auth.js';
import { PassdbChain } from '../passdb/chain.js';
import { parseLoginFields } from '../passdb/fields.js';
import { closeHashPool, hashPassword, SCHEME_NAMES, verifyPassword } from '../passdb/schemes/index.js';
import type { AuthRequest, Fields, PassdbResult } from '../passdb/types.js';
import { createLogger } from '../telemetry/log.js';
import { adminRequest } from './socket.js';

const MASK = '********';
/** Field names whose values are never printed. */
const SECRET_FIELD = /(^|_)(pass|password|password_noscheme|secret|token)$/i;

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const stdio: Output = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

export interface AuthTestOptions {
  /** doveadm's `-x key=value`: service, rip, lip, rport, lport, local_name. */
  readonly info?: readonly string[];
  /** `auth lookup`: no password, show what the passdbs return. */
  readonly lookup?: boolean;
}

/** `portier auth test USER [PASSWORD]` and `portier auth lookup USER`. */
export async function authTest(file: string, login: string, password: string | undefined, opts: AuthTestOptions = {}, io: Output = stdio): Promise<number> {
  const loaded = load(file, io);
  if (loaded === null) return 1;
  const config = loaded.config;
  const info = parseInfo(opts.info ?? []);
  if (typeof info === 'string') {
    io.err(`portier: ${info}\n`);
    return 1;
  }
  const log = createLogger({ level: 'error', instance: 'auth-test', destination: process.stderr });
  let chain: PassdbChain;
  try {
    chain = new PassdbChain(config, log);
  } catch (err) {
    io.err(`portier: cannot set up the passdbs: ${err instanceof PortierError ? err.message : errorText(err)}\n`);
    return 1;
  }
  try {
    return await runTest(chain, config, login, password, info, opts.lookup === true, io);
  } finally {
    await chain.close();
    await closeHashPool();
  }
}

async function runTest(
  chain: PassdbChain,
  config: Config,
  login: string,
  password: string | undefined,
  info: Partial<AuthRequest> & { protocol: Protocol },
  lookup: boolean,
  io: Output,
): Promise<number> {
  const sep = config.auth_master_user_separator;
  let name = login;
  let master: string | undefined;
  if (sep !== '' && name.includes(sep)) {
    master = name.slice(name.lastIndexOf(sep) + 1);
    name = name.slice(0, name.lastIndexOf(sep));
  }
  const user = normalizeUser(name, config.auth_username_format, config.auth_username_chars);
  const masterUser = master === undefined ? undefined : normalizeUser(master, config.auth_username_format, config.auth_username_chars);
  const label = lookup ? 'lookup' : 'auth';
  if (user === null || masterUser === null) {
    io.out(`passdb: ${login} ${label} failed\n  why: the name is refused by auth_username_chars / length limits\n`);
    return 1;
  }
  const base: AuthRequest = {
    user,
    origUser: name,
    mech: 'PLAIN',
    sessionId: 'auth-test',
    remoteIp: '127.0.0.1',
    remotePort: 0,
    localIp: '127.0.0.1',
    localPort: 0,
    realRemoteIp: '127.0.0.1',
    realLocalIp: '127.0.0.1',
    secured: true,
    ...info,
  };
  const secret = password === undefined ? undefined : Buffer.from(password, 'utf8');
  let result: PassdbResult;
  if (masterUser !== undefined) {
    const m = await chain.authenticateMaster({ ...base, user: masterUser, password: secret });
    if (m.kind !== 'ok') return report(io, `${login}`, label, m);
    result = await chain.authenticate({ ...base, masterUser, password: undefined });
  } else if (lookup || secret === undefined) {
    result = await chain.lookupCredentials(base);
  } else {
    result = await chain.authenticate({ ...base, password: secret });
  }
  return report(io, user, label, result, info.protocol);
}

function report(io: Output, user: string, label: string, r: PassdbResult, protocol?: Protocol): number {
  switch (r.kind) {
    case 'tempfail':
      io.out(`passdb: ${user} ${label} failed: temporary failure\n  why: ${r.reason}\n`);
      return 2;
    case 'unknown':
      io.out(`passdb: ${user} ${label} failed\n  why: unknown user\n`);
      return 1;
    case 'mismatch':
      io.out(`passdb: ${user} ${label} failed\n  why: password mismatch (${r.passdb})\n`);
      printFields(io, r.fields);
      return 1;
    case 'ok': {
      io.out(`passdb: ${user} ${label} succeeded\n`);
      const fields = new Map(r.fields);
      if (r.user !== user) fields.set('user', r.user);
      if (r.credentials !== undefined) fields.set('password', r.credentials.stored);
      printFields(io, fields);
      if (protocol !== undefined) io.out(`${routeLine(fields, protocol)}\n`);
      return 0;
    }
  }
}

function printFields(io: Output, fields: Fields): void {
  if (fields.size === 0) return;
  io.out('extra fields:\n');
  for (const [k, v] of fields) io.out(`  ${k}=${SECRET_FIELD.test(k) && v !== '' ? MASK : v}\n`);
}

function routeLine(fields: Fields, protocol: Protocol): string {
  const parsed = parseLoginFields(fields, protocol);
  if (!parsed.ok) return `route: none: invalid fields (${parsed.error})`;
  const f = parsed.fields;
  if (f.proxy !== undefined) {
    const p = f.proxy;
    const port = p.port === undefined ? '' : `:${p.port}`;
    const as = p.master !== undefined ? ` as ${p.destuser ?? 'the user'} via master ${p.master}` : p.destuser !== undefined ? ` as ${p.destuser}` : '';
    return `route: ${p.mode} to ${p.host}${port} (tls ${p.tls}${p.anyCert ? ', any-cert' : ''})${as}${f.nologin ? ' (nologin: refused)' : ''}`;
  }
  if (f.referralHost !== undefined) return `route: referral to ${f.referralHost}${f.referralPort === undefined ? '' : `:${f.referralPort}`}`;
  if (f.nologin) return 'route: none (nologin: refused)';
  return 'route: none (no proxy/host fields: portier cannot serve this login)';
}

function parseInfo(pairs: readonly string[]): (Partial<AuthRequest> & { protocol: Protocol }) | string {
  const out: { -readonly [K in keyof AuthRequest]?: AuthRequest[K] } & { protocol: Protocol } = { protocol: 'imap' };
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return `-x ${pair}: expected key=value`;
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    switch (key) {
      case 'service':
      case 'protocol':
        if (!(PROTOCOLS as readonly string[]).includes(value)) return `-x service: one of ${PROTOCOLS.join(', ')}`;
        out.protocol = value as Protocol;
        break;
      case 'rip':
        out.remoteIp = value;
        out.realRemoteIp = value;
        break;
      case 'lip':
        out.localIp = value;
        out.realLocalIp = value;
        break;
      case 'rport':
      case 'lport': {
        if (!/^\d{1,5}$/.test(value)) return `-x ${key}: expected a port number`;
        if (key === 'rport') out.remotePort = Number(value);
        else out.localPort = Number(value);
        break;
      }
      case 'local_name':
        out.localName = value;
        break;
      default:
        return `-x ${key}: unknown (service, rip, lip, rport, lport, local_name)`;
    }
  }
  return out;
}

/** `portier auth cache flush [USER]`: through the running process's admin socket. */
export async function authCacheFlush(file: string, user: string | undefined, socketPath: string | undefined, io: Output = stdio): Promise<number> {
  let path = socketPath;
  if (path === undefined) {
    const loaded = load(file, io);
    if (loaded === null) return 1;
    path = loaded.config.admin_socket;
  }
  if (path === '') {
    io.err('portier: admin_socket is off in the configuration; nothing to talk to\n');
    return 1;
  }
  let reply: string;
  try {
    reply = await adminRequest(path, user === undefined ? 'AUTH-CACHE-FLUSH' : `AUTH-CACHE-FLUSH ${user}`);
  } catch (err) {
    io.err(`portier: cannot reach the running portier at ${path}: ${errorText(err)}\n`);
    return 1;
  }
  const m = /^OK (\d+)$/.exec(reply);
  if (m === null) {
    io.err(`portier: unexpected answer: ${reply}\n`);
    return 1;
  }
  io.out(`${m[1]} cache entries flushed${user === undefined ? '' : ` for ${user}`}\n`);
  return 0;
}

export interface PwOptions {
  readonly scheme?: string;
  readonly password?: string;
  readonly user?: string;
  readonly rounds?: string;
  /** `-t HASH`: verify the password against a stored value instead. */
  readonly test?: string;
  /** `--verify` (doveadm's -V, which is --version here): verify the new value after making it. */
  readonly verify?: boolean;
  readonly list?: boolean;
}

/** `portier pw`, like `doveadm pw`: prints `{SCHEME}value`. */
export async function pw(opts: PwOptions, io: Output = stdio): Promise<number> {
  if (opts.list === true) {
    io.out(`${SCHEME_NAMES.join(' ')}\n`);
    return 0;
  }
  const rounds = opts.rounds === undefined ? undefined : Number(opts.rounds);
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1)) {
    io.err('portier: -r needs a positive whole number\n');
    return 1;
  }
  try {
    const password = opts.password ?? (await readPassword(opts.test === undefined));
    if (password === null) {
      io.err('portier: passwords do not match\n');
      return 1;
    }
    const secret = Buffer.from(password, 'utf8');
    const stored = opts.test ?? (await hashPassword(opts.scheme ?? 'CRYPT', secret, { ...(rounds !== undefined ? { rounds } : {}), ...(opts.user !== undefined ? { user: opts.user } : {}) }));
    if (opts.test === undefined && opts.verify !== true) {
      io.out(`${stored}\n`);
      return 0;
    }
    const verdict = await verifyPassword(stored, secret, { defaultScheme: opts.scheme ?? 'PLAIN', user: opts.user ?? '' });
    if (verdict === 'ok') {
      io.out(`${stored} (verified)\n`);
      return 0;
    }
    io.err(`portier: verification failed: ${verdict === 'mismatch' ? 'password mismatch' : `${verdict.error} ${verdict.scheme}`}\n`);
    return 1;
  } catch (err) {
    io.err(`portier: ${err instanceof RangeError ? err.message : errorText(err)}\n`);
    return 1;
  } finally {
    await closeHashPool();
  }
}

/** From a terminal: prompt twice without echo; otherwise the first line of stdin. */
async function readPassword(twice: boolean): Promise<string | null> {
  if (!process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return '';
  }
  const first = await promptHidden('Enter new password: ');
  if (!twice) return first;
  const second = await promptHidden('Retype new password: ');
  return first === second ? first : null;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const onData = (d: Buffer): void => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write('\n');
          resolve(text);
          return;
        }
        if (ch === '\u0003') process.exit(130);
        if (ch === '\u007f') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

function load(file: string, io: Output): LoadedConfig | null {
  try {
    return loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`portier: configuration is invalid:\n${err.problems.map((p) => `  ${p}`).join('\n')}\n`);
      return null;
    }
    throw err;
  }
}
