import { chown, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { lmtpDeliver } from './lmtp-client.js';
import { PeerProcess, systemUserIds, type PeerLifecycle } from './peer.js';
import { freePort } from './ports.js';
import type { ManagedProcess } from './procs.js';
import { startProcess, waitFor, waitForListening } from './procs.js';
import { makeTempDir } from './tmp.js';

export interface DovecotUser {
  user: string;
  password: string;
}

export interface DovecotPorts {
  imap: number;
  imaps?: number;
  pop3: number;
  pop3s?: number;
  lmtp: number;
}

export type DovecotProtocol = 'imap' | 'pop3' | 'lmtp';

export interface DovecotOptions {
  /** Listen address; default 127.0.0.2, so clients on 127.0.0.1 are not "local". */
  address?: string;
  users?: DovecotUser[];
  /** Master users: log in as `user*master` with the master's password. */
  masterUsers?: DovecotUser[];
  protocols?: DovecotProtocol[];
  /** login_trusted_networks: peers allowed to forward ID x-originating-ip / XCLIENT. */
  trustedNetworks?: string[];
  ssl?: 'no' | 'yes' | 'required';
  cert?: { certFile: string; keyFile: string };
  disablePlaintextAuth?: boolean;
  /** Appended verbatim to the generated dovecot.conf. */
  extraConf?: string;
  /** Reuse these ports (e.g. to bring a backend back where it was); fresh ones otherwise. */
  ports?: DovecotPorts;
  /** Reuse this directory (mail and logs survive); a fresh temp dir otherwise. */
  dir?: string;
  startTimeoutMs?: number;
}

export interface DeliverOptions {
  /** MAIL FROM address; default the null sender. */
  from?: string;
}

export interface DovecotBackend extends PeerLifecycle {
  readonly host: string;
  readonly ports: Readonly<DovecotPorts>;
  readonly dir: string;
  readonly users: readonly DovecotUser[];
  readonly masterUsers: readonly DovecotUser[];
  readonly confFile: string;
  readonly logFile: string;
  readLog(): Promise<string>;
  /** Byte length of the log now: pass as `fromOffset` to wait only for newer lines. */
  logSize(): Promise<number>;
  /** Resolves with the first log line (after fromOffset) matching `re`. */
  waitForLog(re: RegExp, timeoutMs?: number, fromOffset?: number): Promise<string>;
  /** Deliver through the backend's LMTP listener; rejects unless the recipient got 250. */
  deliver(user: string, rfc822: Buffer | string, opts?: DeliverOptions): Promise<void>;
  /**
   * Stored messages of INBOX or a maildir++ folder, oldest first, from new/ and cur/. The
   * Return-Path line LMTP prepends is cut off, so a delivered message comes back as sent.
   */
  listMessages(user: string, mailbox?: string, opts?: { raw?: boolean }): Promise<Buffer[]>;
  /** Stop the master (SIGTERM; Dovecot takes ~1 s); ports and dir are kept for start(). */
  stop(): Promise<void>;
  /** SIGKILL master and children at once: a crash; start() brings it back. */
  kill(): Promise<void>;
}

const DEFAULT_PROTOCOLS: readonly DovecotProtocol[] = ['imap', 'pop3', 'lmtp'];

function passwdLine(u: DovecotUser, what: string): string {
  if (/[:\r\n]/.test(u.user) || /[\r\n]/.test(u.password)) throw new Error(`${what}: unsupported character in ${u.user}`);
  return `${u.user}:{PLAIN}${u.password}\n`;
}

function listener(name: string, address: string, port: number | undefined, ssl: boolean): string {
  // port = 0 disables a default listener; without it Dovecot binds 143/993/110/995.
  return `  inet_listener ${name} {\n    address = ${address}\n    port = ${port ?? 0}\n` +
    (ssl ? '    ssl = yes\n' : '') + '  }\n';
}

interface ConfInput {
  dir: string;
  address: string;
  ports: DovecotPorts;
  protocols: readonly DovecotProtocol[];
  ssl: 'no' | 'yes' | 'required';
  cert: { certFile: string; keyFile: string } | undefined;
  trustedNetworks: readonly string[];
  disablePlaintextAuth: boolean;
  hasMasters: boolean;
  extraConf: string;
}

function renderConf(c: ConfInput): string {
  const tls = c.ssl !== 'no';
  const lines = [
    `instance_name = portier-test-${basename(c.dir)}`,
    `base_dir = ${c.dir}/run`,
    `state_dir = ${c.dir}/state`,
    `log_path = ${c.dir}/dovecot.log`,
    `info_log_path = ${c.dir}/dovecot.log`,
    `debug_log_path = ${c.dir}/dovecot.log`,
    `protocols = ${c.protocols.join(' ')}`,
    `listen = ${c.address}`,
    `ssl = ${c.ssl}`,
    ...(c.cert !== undefined ? [`ssl_cert = <${c.cert.certFile}`, `ssl_key = <${c.cert.keyFile}`] : []),
    `disable_plaintext_auth = ${c.disablePlaintextAuth ? 'yes' : 'no'}`,
    `login_trusted_networks = ${c.trustedNetworks.join(' ')}`,
    'auth_verbose = yes',
    'auth_failure_delay = 0',
    'auth_mechanisms = plain login',
    'auth_master_user_separator = *',
    'mail_uid = mail',
    'mail_gid = mail',
    'first_valid_uid = 1',
    'first_valid_gid = 1',
    'mail_location = maildir:~/Maildir',
    // Stored files keep the delivered bytes: CRLF as sent, no trace headers but Return-Path.
    'mail_save_crlf = yes',
    'lmtp_add_received_header = no',
    'lmtp_hdr_delivery_address = none',
    'mailbox_idle_check_interval = 1 secs',
  ];
  let conf = lines.join('\n') + '\n';
  if (c.hasMasters) {
    conf += `passdb {\n  driver = passwd-file\n  args = ${c.dir}/master-users\n  master = yes\n  pass = yes\n}\n`;
  }
  conf += `passdb {\n  driver = passwd-file\n  args = ${c.dir}/users\n}\n`;
  conf += `userdb {\n  driver = static\n  args = uid=mail gid=mail home=${c.dir}/mail/%u\n}\n`;
  conf += 'service imap-login {\n' + listener('imap', c.address, c.ports.imap, false) +
    listener('imaps', c.address, tls ? c.ports.imaps : 0, true) + '}\n';
  conf += 'service pop3-login {\n' + listener('pop3', c.address, c.ports.pop3, false) +
    listener('pop3s', c.address, tls ? c.ports.pop3s : 0, true) + '}\n';
  conf += 'service lmtp {\n' + listener('lmtp', c.address, c.ports.lmtp, false) + '}\n';
  // The auth penalty would delay later logins from one client IP by up to 15 s.
  conf += 'service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n';
  conf += 'service submission-login {\n  inet_listener submission {\n    port = 0\n  }\n}\n';
  return conf + c.extraConf + '\n';
}

async function allocPorts(address: string, tls: boolean): Promise<DovecotPorts> {
  const ports: DovecotPorts = { imap: await freePort(address), pop3: await freePort(address), lmtp: await freePort(address) };
  if (tls) {
    ports.imaps = await freePort(address);
    ports.pop3s = await freePort(address);
  }
  return ports;
}

function listenedPorts(ports: DovecotPorts, protocols: readonly DovecotProtocol[], tls: boolean): number[] {
  const out: number[] = [];
  if (protocols.includes('imap')) out.push(ports.imap, ...(tls && ports.imaps !== undefined ? [ports.imaps] : []));
  if (protocols.includes('pop3')) out.push(ports.pop3, ...(tls && ports.pop3s !== undefined ? [ports.pop3s] : []));
  if (protocols.includes('lmtp')) out.push(ports.lmtp);
  return out;
}

function mailboxDir(home: string, mailbox: string): string {
  if (mailbox.toUpperCase() === 'INBOX') return join(home, 'Maildir');
  return join(home, 'Maildir', '.' + mailbox.replace(/\//g, '.'));
}

/** Maildir names start `<secs>.M<usecs>P<pid>`: order by time, whichever of new/cur holds them. */
function maildirOrder(a: string, b: string): number {
  const ka = /^(\d+)\.M(\d+)/.exec(a);
  const kb = /^(\d+)\.M(\d+)/.exec(b);
  if (ka !== null && kb !== null) {
    const d = Number(ka[1]) - Number(kb[1]) || Number(ka[2]) - Number(kb[2]);
    if (d !== 0) return d;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function stripReturnPath(msg: Buffer): Buffer {
  if (!msg.subarray(0, 12).equals(Buffer.from('Return-Path:'))) return msg;
  const eol = msg.indexOf('\n');
  return eol < 0 ? msg : msg.subarray(eol + 1);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

class DovecotPeer extends PeerProcess implements DovecotBackend {
  readonly host: string;
  readonly dir: string;
  readonly users: readonly DovecotUser[];
  readonly masterUsers: readonly DovecotUser[];
  readonly confFile: string;
  readonly logFile: string;
  readonly #conf: Omit<ConfInput, 'ports'>;
  readonly #startTimeoutMs: number;
  #ports: DovecotPorts;

  constructor(c: { conf: Omit<ConfInput, 'ports'>; ports: DovecotPorts; users: readonly DovecotUser[]; masterUsers: readonly DovecotUser[]; startTimeoutMs: number }) {
    super();
    this.#conf = c.conf;
    this.host = c.conf.address;
    this.dir = c.conf.dir;
    this.#ports = c.ports;
    this.users = c.users;
    this.masterUsers = c.masterUsers;
    this.confFile = join(this.dir, 'dovecot.conf');
    this.logFile = join(this.dir, 'dovecot.log');
    this.#startTimeoutMs = c.startTimeoutMs;
  }

  get ports(): Readonly<DovecotPorts> {
    return this.#ports;
  }

  writeConf(): Promise<void> {
    return writeFile(this.confFile, renderConf({ ...this.#conf, ports: this.#ports }));
  }

  async newPorts(): Promise<void> {
    this.#ports = await allocPorts(this.host, this.#conf.ssl !== 'no');
    await this.writeConf();
  }

  protected async launch(): Promise<ManagedProcess> {
    const p = await startProcess({
      name: `dovecot ${this.host}`,
      command: 'dovecot',
      args: ['-F', '-c', this.confFile],
      cwd: this.dir,
      logFile: join(this.dir, 'stdout.log'),
      processGroup: true,
    });
    try {
      for (const port of listenedPorts(this.#ports, this.#conf.protocols, this.#conf.ssl !== 'no')) {
        await waitForListening(this.host, port, this.#startTimeoutMs, p);
      }
    } catch (err) {
      await p.stop();
      const log = await readFile(this.logFile, 'utf8').catch(() => '');
      throw new Error(`${(err as Error).message}\n--- dovecot.log ---\n${log.slice(-4000)}`, { cause: err });
    }
    return p;
  }

  readLog(): Promise<string> {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }

  async logSize(): Promise<number> {
    return (await stat(this.logFile).catch(() => ({ size: 0 }))).size;
  }

  waitForLog(re: RegExp, timeoutMs = 5000, fromOffset = 0): Promise<string> {
    return waitFor(`dovecot log to match ${String(re)}`, async () => {
      const text = Buffer.from(await this.readLog()).subarray(fromOffset).toString('utf8');
      return text.split('\n').find((l) => re.test(l));
    }, timeoutMs, { intervalMs: 20 });
  }

  async deliver(user: string, rfc822: Buffer | string, o: DeliverOptions = {}): Promise<void> {
    await lmtpDeliver({ host: this.host, port: this.#ports.lmtp, from: o.from ?? '', to: [user], data: rfc822 });
  }

  async listMessages(user: string, mailbox = 'INBOX', o: { raw?: boolean } = {}): Promise<Buffer[]> {
    const box = mailboxDir(join(this.dir, 'mail', user.toLowerCase()), mailbox);
    const files = [
      ...(await listDir(join(box, 'new'))).map((f) => join(box, 'new', f)),
      ...(await listDir(join(box, 'cur'))).map((f) => join(box, 'cur', f)),
    ].sort((a, b) => maildirOrder(basename(a), basename(b)));
    const bodies = await Promise.all(files.map((f) => readFile(f)));
    return o.raw === true ? bodies : bodies.map(stripReturnPath);
  }
}

/** Start a private Dovecot on fresh loopback ports; resolves once every listener listens. */
export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotBackend> {
  const address = opts.address ?? '127.0.0.2';
  const ssl = opts.ssl ?? 'no';
  const tls = ssl !== 'no';
  if (tls && opts.cert === undefined) throw new Error(`startDovecot: ssl=${ssl} needs cert`);
  const protocols = opts.protocols ?? DEFAULT_PROTOCOLS;
  const users = opts.users ?? [];
  const masterUsers = opts.masterUsers ?? [];
  const dir = opts.dir ?? (await makeTempDir('portier-dovecot-'));
  const mail = userInfo({ encoding: 'utf8' }).uid === 0 ? await systemUserIds('mail') : undefined;

  await mkdir(join(dir, 'mail'), { recursive: true, mode: 0o770 });
  if (mail !== undefined) await chown(join(dir, 'mail'), mail.uid, mail.gid);
  await writeFile(join(dir, 'users'), users.map((u) => passwdLine(u, 'users')).join(''), { mode: 0o644 });
  if (masterUsers.length > 0) {
    await writeFile(join(dir, 'master-users'), masterUsers.map((u) => passwdLine(u, 'masterUsers')).join(''), { mode: 0o644 });
  }

  const backend = new DovecotPeer({
    conf: {
      dir, address, protocols, ssl, cert: opts.cert, trustedNetworks: opts.trustedNetworks ?? [],
      disablePlaintextAuth: opts.disablePlaintextAuth ?? false, hasMasters: masterUsers.length > 0,
      extraConf: opts.extraConf ?? '',
    },
    ports: opts.ports ?? (await allocPorts(address, tls)),
    users,
    masterUsers,
    startTimeoutMs: opts.startTimeoutMs ?? 10_000,
  });
  await backend.writeConf();
  await backend.firstStart(opts.ports === undefined ? () => backend.newPorts() : undefined);
  return backend;
}
