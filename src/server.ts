/**
 * A running portier: listeners for every configured protocol, the session registry, reload
 * and a clean stop. `main.ts` wraps it with signals; tests start it in-process.
 */
import type { LoadedConfig } from './config/load.js';
import type { Protocol } from './config/schema.js';
import { errorText, PortierError } from './errors.js';
import { imapFrontend } from './imap/frontend.js';
import { bindListener, type BoundListener, type ProtocolFrontend } from './listen/server.js';
import { createRuntime, type Runtime } from './login/runtime.js';
import type { ClientSession, SessionInfo } from './login/session.js';
import type { Logger } from './telemetry/log.js';

const FRONTENDS: Partial<Record<Protocol, ProtocolFrontend>> = {
  imap: imapFrontend,
};

export function supportedProtocols(): Protocol[] {
  return Object.keys(FRONTENDS) as Protocol[];
}

export class Portier {
  #runtime: Runtime;
  readonly #log: Logger;
  #bound: BoundListener[] = [];
  readonly #sessions = new Set<ClientSession>();
  #stopping = false;

  constructor(loaded: LoadedConfig, log: Logger) {
    this.#log = log;
    for (const l of loaded.listeners) {
      if (FRONTENDS[l.protocol] === undefined) {
        throw new PortierError('CONFIG_INVALID', `protocol ${l.protocol} (listener ${l.name}) is not available in this version; remove it from protocols`);
      }
    }
    this.#runtime = createRuntime(loaded, log);
  }

  get runtime(): Runtime {
    return this.#runtime;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Snapshots of the current sessions (for `who`-style listings and tests). */
  sessions(): SessionInfo[] {
    return [...this.#sessions].map((s) => s.info());
  }

  /** Bind every listener; on any failure, close what was bound and throw. */
  async start(): Promise<void> {
    const rt = this.#runtime;
    try {
      for (const spec of rt.listeners) {
        const frontend = FRONTENDS[spec.protocol];
        if (!frontend) continue;
        for (const address of spec.addresses) {
          try {
            this.#bound.push(await bindListener(spec, address, () => this.#runtime, frontend, (s) => this.#track(s)));
          } catch (err) {
            // Dovecot's default `listen = *, ::` must work on hosts without IPv6.
            if (address === '::' && spec.addresses.includes('*') && /EAFNOSUPPORT|EADDRNOTAVAIL/.test(errorText(err))) {
              this.#log.warn({ listener: spec.name }, 'IPv6 is not available; listening on IPv4 only');
              continue;
            }
            throw err;
          }
        }
      }
    } catch (err) {
      await this.#closeListeners();
      throw err;
    }
    for (const b of this.#bound) {
      this.#log.info({ listener: b.spec.name, protocol: b.spec.protocol, address: b.address, port: b.port, ssl: b.spec.ssl }, 'listening');
    }
  }

  /** Where each listener is bound (tests configure port 0 and read the real port here). */
  addresses(): { name: string; protocol: Protocol; address: string; port: number; ssl: boolean }[] {
    return this.#bound.map((b) => ({ name: b.spec.name, protocol: b.spec.protocol, address: b.address, port: b.port, ssl: b.spec.ssl }));
  }

  /** Apply a new configuration: new sessions use it, existing sessions keep theirs. */
  reload(loaded: LoadedConfig): void {
    const old = this.#runtime;
    this.#runtime = createRuntime(loaded, this.#log);
    void old.passdbs.close();
    this.#log.info({ file: loaded.file }, 'configuration reloaded');
  }

  /**
   * Stop accepting, say goodbye to clients still logging in, and give proxied sessions until
   * the deadline to finish before they are cut.
   */
  async stop(deadlineMs = this.#runtime.config.shutdown_timeout): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const closing = this.#closeListeners();
    for (const s of this.#sessions) {
      if (s.state !== 'spliced') s.close('shutdown', 'Disconnected: server shutting down', FRONTENDS[s.listener.protocol]?.goodbye(s, 'shutdown'));
    }
    const deadline = Date.now() + deadlineMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.#sessions) s.socket.destroy();
    await closing;
    await this.#runtime.passdbs.close();
  }

  #track(session: ClientSession): void {
    if (this.#stopping) {
      session.close('shutdown', 'Disconnected: server shutting down', FRONTENDS[session.listener.protocol]?.goodbye(session, 'shutdown'));
      return;
    }
    this.#sessions.add(session);
    session.onEnd(() => this.#sessions.delete(session));
  }

  async #closeListeners(): Promise<void> {
    const bound = this.#bound;
    this.#bound = [];
    await Promise.all(bound.map((b) => new Promise<void>((resolve) => b.server.close(() => resolve()))));
  }
}
