/**
 * The lifecycle the test peers (Dovecot, PostgreSQL, Redis) share: one process at a time,
 * stopped or killed and started again on the same ports and data; the first start picks new
 * ports when another test worker bound the free ones first. And the system users they run as.
 */
import { readFile } from 'node:fs/promises';
import type { ManagedProcess } from './procs.js';

export interface PeerLifecycle {
  /** PID of the running process (the one we started); -1 before it started. */
  readonly pid: number;
  readonly running: boolean;
  /** What the current run wrote to stdout/stderr. */
  output(): string;
  /** Graceful stop; ports and data are kept for start(). */
  stop(): Promise<void>;
  /** SIGKILL: a crash; start() brings it back. */
  kill(): Promise<void>;
  /** Start again on the same ports (nothing to do while running). */
  start(): Promise<void>;
  restart(): Promise<void>;
}

export abstract class PeerProcess implements PeerLifecycle {
  #proc: ManagedProcess | undefined;

  /** Start the process and wait until it serves; stop it again and throw when it does not. */
  protected abstract launch(): Promise<ManagedProcess>;

  get pid(): number {
    return this.#proc?.pid ?? -1;
  }

  get running(): boolean {
    return this.#proc?.running ?? false;
  }

  output(): string {
    return this.#proc?.output() ?? '';
  }

  async stop(): Promise<void> {
    await this.#proc?.stop();
  }

  async kill(): Promise<void> {
    await this.#proc?.kill();
  }

  async start(): Promise<void> {
    if (this.#proc?.running === true) return;
    this.#proc = await this.launch();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /**
   * The first start. Another worker may take a port between freePort() and the bind: then
   * `repick` (new free ports) and try again, three tries in all. Without `repick` (ports the
   * caller chose) a failure is final.
   */
  async firstStart(repick: (() => Promise<void>) | undefined): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.start();
        return;
      } catch (err) {
        if (repick === undefined || attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err;
        await repick();
      }
    }
  }
}

export interface SystemUserIds {
  readonly uid: number;
  readonly gid: number;
}

const systemUsers = new Map<string, Promise<SystemUserIds>>();

/** uid/gid of a system user from /etc/passwd (`mail` owns test mail; PostgreSQL runs as `postgres`). */
export function systemUserIds(name: string): Promise<SystemUserIds> {
  let ids = systemUsers.get(name);
  if (ids === undefined) {
    ids = readFile('/etc/passwd', 'utf8').then((text) => {
      const f = text.split('\n').find((l) => l.startsWith(`${name}:`))?.split(':');
      if (f === undefined || f[2] === undefined || f[3] === undefined) throw new Error(`no \`${name}\` user in /etc/passwd`);
      return { uid: Number(f[2]), gid: Number(f[3]) };
    });
    systemUsers.set(name, ids);
  }
  return ids;
}
