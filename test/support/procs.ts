import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { connect, isIPv6 } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Short label for errors and the registry. */
  name: string;
  command: string;
  args?: readonly string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this uid/gid (we are root); the PID we hold is the peer's own, no runuser in between. */
  uid?: number;
  gid?: number;
  /** stdout and stderr are appended here as well as kept in memory. */
  logFile?: string;
  /** First signal sent by stop(); PostgreSQL wants SIGINT (fast shutdown). Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** After this long, stop() sends SIGKILL. Default 5000 ms. */
  stopTimeoutMs?: number;
  /**
   * Make the child a process group leader, so kill() and the exit hook take its whole
   * tree (Dovecot's and PostgreSQL's worker processes) down at once.
   */
  processGroup?: boolean;
}

export interface StopOptions {
  signal?: NodeJS.Signals;
  timeoutMs?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly running: boolean;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Everything the process wrote to stdout/stderr so far (last 1 MiB). */
  output(): string;
  /** Signal, wait, SIGKILL after the timeout. Resolves at once if already exited. */
  stop(opts?: StopOptions): Promise<ExitInfo>;
  /** SIGKILL now (the whole group with processGroup): a crash, not a shutdown. */
  kill(): Promise<ExitInfo>;
}

const OUTPUT_LIMIT = 1 << 20;
const live = new Set<ManagedProcessImpl>();

class ManagedProcessImpl implements ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  #child: ChildProcess;
  #running = true;
  #out = '';
  #log: WriteStream | undefined;
  #stopSignal: NodeJS.Signals;
  #stopTimeoutMs: number;
  #group: boolean;

  constructor(child: ChildProcess, pid: number, opts: StartOptions) {
    this.name = opts.name;
    this.pid = pid;
    this.#child = child;
    this.#stopSignal = opts.stopSignal ?? 'SIGTERM';
    this.#stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    this.#group = opts.processGroup === true;
    if (opts.logFile !== undefined) this.#log = createWriteStream(opts.logFile, { flags: 'a' });
    const onData = (chunk: Buffer): void => {
      this.#out += chunk.toString('utf8');
      if (this.#out.length > OUTPUT_LIMIT) this.#out = this.#out.slice(-OUTPUT_LIMIT);
      this.#log?.write(chunk);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        this.#running = false;
        live.delete(this);
        this.#log?.end();
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return this.#running;
  }

  output(): string {
    return this.#out;
  }

  async stop(opts: StopOptions = {}): Promise<ExitInfo> {
    if (!this.#running) return this.exited;
    this.#child.kill(opts.signal ?? this.#stopSignal);
    const timeoutMs = opts.timeoutMs ?? this.#stopTimeoutMs;
    const timer = sleep(timeoutMs, 'timeout' as const, { ref: false });
    if ((await Promise.race([this.exited, timer])) === 'timeout') this.killNow();
    return this.#afterGroup(await this.exited);
  }

  async kill(): Promise<ExitInfo> {
    this.killNow();
    return this.#afterGroup(await this.exited);
  }

  /**
   * With a process group, the leader's exit is not the end: its children (Dovecot's log and
   * service processes) may still be dying and still hold the listening sockets they inherited,
   * so a restart in the same directory finds "Socket already exists". Wait until every member
   * is gone or a zombie (a zombie holds no file; PID 1 here reaps them only after a second or
   * so), at most 5 s.
   */
  async #afterGroup(info: ExitInfo): Promise<ExitInfo> {
    if (!this.#group) return info;
    for (let waited = 0; waited < 5000 && (await liveGroupMembers(this.pid)) > 0; waited += 10) await sleep(10);
    return info;
  }

  killNow(): void {
    if (!this.#running) return;
    // Until 'exit' is handled the child is unreaped, so its pid (and group) cannot be reused.
    if (this.#group) {
      try {
        process.kill(-this.pid, 'SIGKILL');
        return;
      } catch {
        // group gone already: fall back to the leader
      }
    }
    this.#child.kill('SIGKILL');
  }
}

/** Processes of process group `pgid` that are not zombies, from /proc/<pid>/stat (state and pgrp follow the command name). */
async function liveGroupMembers(pgid: number): Promise<number> {
  let n = 0;
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') n++;
  }
  return n;
}

const exitCallbacks: (() => void)[] = [];
let hooked = false;

function runExitHooks(): void {
  killAllStarted();
  for (const fn of exitCallbacks.splice(0)) {
    try {
      fn();
    } catch {
      // best effort at exit
    }
  }
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', runExitHooks);
  // A signal kills Node without 'exit' (vitest ends its fork workers with SIGTERM): clean
  // up, then die of the same signal unless somebody else handles it.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const handler = (): void => {
      runExitHooks();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

/** Run `fn` (sync) at process exit or on a fatal signal, after our peers were SIGKILLed. */
export function atExit(fn: () => void): void {
  hookExit();
  exitCallbacks.push(fn);
}

function unrefStreams(child: ChildProcess): void {
  child.unref();
  for (const s of [child.stdout, child.stderr]) {
    if (s !== null && 'unref' in s && typeof s.unref === 'function') s.unref();
  }
}

/**
 * Spawn a long-running peer. It does not keep the event loop alive: one a test forgets to
 * stop is SIGKILLed at process exit. Resolves once the OS has started it.
 */
export async function startProcess(opts: StartOptions): Promise<ManagedProcess> {
  hookExit();
  const child = spawn(opts.command, opts.args ?? [], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.processGroup === true,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`${opts.name}: cannot start ${opts.command}: ${err.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${opts.name}: no pid`);
  const proc = new ManagedProcessImpl(child, pid, opts);
  live.add(proc);
  unrefStreams(child);
  return proc;
}

/** SIGKILL every process this module started that is still running (sync; for exit hooks). */
export function killAllStarted(): void {
  for (const p of live) p.killNow();
}

/** Stop every process this module started, gracefully (for afterAll). */
export async function stopAllStarted(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

export function runningProcesses(): ManagedProcess[] {
  return [...live];
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  input?: string;
  timeoutMs?: number;
}

/** Run a short command to completion; rejects with its output on a non-zero exit. */
export async function runCommand(command: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    // No input: no stdin pipe at all (a child that exits at once would make writing to it EPIPE).
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 60_000,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  if (child.stdin !== null) {
    // The child may exit without reading its input; that is its answer, not an error here.
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input);
  }
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(code)}:\n${out}`);
  return out;
}

/** Poll `check` every `intervalMs` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  opts: { proc?: ManagedProcess; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (opts.proc !== undefined && !opts.proc.running) {
      const info = await opts.proc.exited;
      throw new Error(
        `${opts.proc.name} exited (code ${String(info.code)}, signal ${String(info.signal)}) while waiting for ${what}:\n${opts.proc.output().slice(-4000)}`,
      );
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(opts.intervalMs ?? 25);
  }
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    sock.setTimeout(1000);
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.once('timeout', () => done(false));
  });
}

/** Wait until a TCP connect to host:port succeeds (the peer sees one connection). */
export async function waitForPort(host: string, port: number, timeoutMs = 10_000, proc?: ManagedProcess): Promise<void> {
  await waitFor(`${host}:${port} to accept`, () => tryConnect(host, port), timeoutMs, proc === undefined ? {} : { proc });
}

/** 143 → `008F`: a port as /proc/net/tcp prints it. */
export function procNetPort(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, '0');
}

/** `127.0.0.5`, 143 → `0500007F:008F`: how /proc/net/tcp prints an IPv4 address and port. */
export function procNetAddr(host: string, port: number): string {
  const portHex = procNetPort(port);
  if (isIPv6(host)) throw new Error('procNetAddr: IPv4 only');
  const octets = host.split('.').map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0'));
  return `${octets.reverse().join('')}:${portHex}`;
}

async function socketInodes(pid: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m?.[1] !== undefined) inodes.add(m[1]);
  }
  return inodes;
}

/**
 * True if a socket listens on exactly host:port (or the wildcard), read from /proc/net/tcp;
 * with `pid`, only if that process holds the listening socket.
 */
export async function isListening(host: string, port: number, pid?: number): Promise<boolean> {
  const text = await readFile('/proc/net/tcp', 'utf8');
  const want = procNetAddr(host, port);
  const any = procNetAddr('0.0.0.0', port);
  const inodes: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && (f[1] === want || f[1] === any) && f[9] !== undefined) inodes.push(f[9]);
  }
  if (inodes.length === 0) return false;
  if (pid === undefined) return true;
  const owned = await socketInodes(pid);
  return inodes.some((i) => owned.has(i));
}

/**
 * Like waitForPort, without connecting, so the peer logs no probe connection. With `proc`,
 * the listener must be that process's own (not a leftover peer's on the same port). Linux only.
 */
export async function waitForListening(host: string, port: number, timeoutMs = 10_000, proc?: ManagedProcess): Promise<void> {
  await waitFor(`${host}:${port} to listen`, () => isListening(host, port, proc?.pid), timeoutMs, proc === undefined ? {} : { proc });
}
