/**
 * The compare runner's child processes: started with their output in a log file, tracked
 * by the PID we got from spawn, stopped by that PID only (SIGTERM, then SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the process has exited (at once if it already has). */
  exited(): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<Managed>();

export function startManaged(name: string, cmd: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Managed {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: env ?? process.env });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const pid = child.pid;
  let done = child.exitCode !== null || child.signalCode !== null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', () => {
      done = true;
      resolve();
    });
  });
  const m: Managed = {
    name,
    child,
    pid,
    logFile,
    exited: () => exit,
    async stop() {
      live.delete(m);
      if (done) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!done) child.kill('SIGKILL');
      }, 8000);
      await exit;
      clearTimeout(t);
    },
  };
  live.add(m);
  return m;
}

/** Stop everything still running that this runner started (on exit, error or signal). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((m) => m.stop()));
}

/**
 * Synchronous last resort for process exit: SIGTERM our own children by PID (not SIGKILL:
 * nginx's and Dovecot's masters take their workers down only when they are asked politely).
 */
export function killAllSync(): void {
  for (const m of live) {
    try {
      process.kill(m.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Wait until host:port accepts a connection and sends a first line (a greeting). */
export async function waitReady(m: Managed, host: string, port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (m.child.exitCode !== null || m.child.signalCode !== null) {
      throw new Error(`${m.name} exited while starting; its log ${m.logFile} ends:\n${tail(m.logFile)}`);
    }
    if (await greets(host, port)) return;
    if (Date.now() > deadline) throw new Error(`${m.name}: ${host}:${port} not ready within ${timeoutMs} ms; log ${m.logFile}:\n${tail(m.logFile)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Refuse to start a peer where something already answers: its numbers would be another's. */
export async function assertFree(name: string, host: string, port: number): Promise<void> {
  if (await greets(host, port)) throw new Error(`${name}: ${host}:${port} already answers (a leftover from an earlier run?); stop it first`);
}

function greets(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const t = setTimeout(() => finish(false), 1500);
    const finish = (ok: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    s.once('data', () => finish(true));
    s.once('error', () => finish(false));
    s.once('close', () => finish(false));
  });
}

export function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Run a command to completion (bounded); resolves with its output. */
export function runCommand(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(t);
      resolve({ code: -1, out: err.message });
    });
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? -1, out });
    });
  });
}
