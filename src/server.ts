/**
 * A running portier: listeners for every configured protocol, the session registry, reload
 * and a clean stop. `main.ts` wraps it with signals; tests start it in-process.
 */
import type { LoadedConfig } from './config/load.js';
import type { Protocol } from './config/schema.js';
import { startAdminHttp, type AdminHttp } from './admin/http.js';
import { startAdminSocket, type AdminSocket } from './admin/socket.js';
import { AuthPenalty } from './passdb/penalty.js';
import { BackendHealth } from './backend/health.js';
import { DisconnectSpreader } from './splice/spread.js';
import { errorText, PortierError } from './errors.js';
import { imapFrontend } from './imap/frontend.js';
import { pop3Frontend } from './pop3/frontend.js';
import { lmtpFrontend } from './lmtp/frontend.js';
import { bindListener, type BoundListener, type ProtocolFrontend } from './listen/server.js';
import { ConnectionLimits } from './login/limits.js';
import { createRuntime, type Runtime } from './login/runtime.js';
import { TlsStore } from './tls/store.js';
import type { ClientSession, SessionInfo } from './login/session.js';
import type { Logger } from './telemetry/log.js';
import { Metrics } from './telemetry/metrics.js';
import { keepPrimitivePrototypesFast } from './prototypes.js';

const FRONTENDS: Partial<Record<Protocol, ProtocolFrontend>> = {
  imap: imapFrontend,
  pop3: pop3Frontend,
  lmtp: lmtpFrontend,
};

export function supportedProtocols(): Protocol[] {
  return Object.keys(FRONTENDS) as Protocol[];
}

export class Portier {
  #runtime: Runtime;
  /** Backend failure memory outlives reloads: a dead backend is still dead after SIGHUP. */
  readonly #health = new BackendHealth(() => this.#runtime.config.proxy_host_immediate_failure_after);
  readonly #disconnects = new DisconnectSpreader(() => this.#runtime.config.login_proxy_max_disconnect_delay);
  /** Connection counts outlive reloads: sessions admitted before one are still there. */
  readonly #limits = new ConnectionLimits();
  readonly #log: Logger;
  #bound: BoundListener[] = [];
  readonly #sessions = new Set<ClientSession>();
  #stopping = false;
  #ready = false;
  readonly #metrics: Metrics;
  #admin: AdminHttp | undefined;
  #adminSocket: AdminSocket | undefined;
  /** Penalties outlive reloads (as Dovecot's anvil does); its settings need a restart. */
  readonly #penalty: AuthPenalty;
  /** Certificates outlive reloads: a reload swaps them entry by entry, keeping what fails to load. */
  readonly #tls: TlsStore;

  readonly #adminHttp: boolean;

  /** `adminHttp: false` in cluster workers: the primary serves the admin port for all. */
  constructor(loaded: LoadedConfig, log: Logger, options: { adminHttp?: boolean } = {}) {
    this.#adminHttp = options.adminHttp ?? true;
    this.#log = log;
    for (const l of loaded.listeners) {
      if (FRONTENDS[l.protocol] === undefined) {
        throw new PortierError('CONFIG_INVALID', `protocol ${l.protocol} (listener ${l.name}) is not available in this version; remove it from protocols`);
      }
    }
    this.#penalty = AuthPenalty.fromConfig(loaded.config, log);
    this.#tls = new TlsStore(loaded.config, loaded.listeners, log);
    this.#runtime = createRuntime(loaded, log, { health: this.#health, disconnects: this.#disconnects, penalty: this.#penalty, tls: this.#tls, limits: this.#limits });
    this.#metrics = new Metrics({ sessionCounts: () => this.#sessionCounts(), lmtpIdleConnections: () => this.#runtime.lmtpIdle.size });
  }

  get metrics(): Metrics {
    return this.#metrics;
  }

  /** Serving and not draining: what /readyz reports. */
  get ready(): boolean {
    return this.#ready && !this.#stopping;
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
    // After every module is loaded (ioredis's `extends String` slows every string method otherwise).
    keepPrimitivePrototypesFast();
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
    const adminListen = rt.config.admin_listen;
    if (adminListen !== undefined && this.#adminHttp) {
      try {
        this.#admin = await startAdminHttp(adminListen, { metrics: () => this.#metrics.text(), ready: () => this.ready }, this.#log);
      } catch (err) {
        await this.#closeListeners();
        throw err;
      }
    }
    if (rt.config.admin_socket !== '' && this.#adminHttp) {
      try {
        this.#adminSocket = await startAdminSocket(
          rt.config.admin_socket,
          { flushAuthCache: (user) => this.#runtime.passdbs.flushCache(user), authCacheStats: () => this.#runtime.passdbs.cacheStats() },
          this.#log,
        );
      } catch (err) {
        // Not needed to serve mail: say so loudly and carry on.
        this.#log.error({ err: errorText(err) }, 'admin socket not available; `portier auth cache flush` cannot reach this process');
      }
    }
    this.#ready = true;
    this.#tls.watch();
    for (const b of this.#bound) {
      this.#log.info({ listener: b.spec.name, protocol: b.spec.protocol, address: b.address, port: b.port, ssl: b.spec.ssl }, 'listening');
    }
  }

  /** The admin HTTP listener's address, when configured. */
  adminAddress(): { address: string; port: number } | undefined {
    return this.#admin && { address: this.#admin.address, port: this.#admin.port };
  }

  /** Where each listener is bound (tests configure port 0 and read the real port here). */
  addresses(): { name: string; protocol: Protocol; address: string; port: number; ssl: boolean }[] {
    return this.#bound.map((b) => ({ name: b.spec.name, protocol: b.spec.protocol, address: b.address, port: b.port, ssl: b.spec.ssl }));
  }

  /** Apply a new configuration: new sessions use it, existing sessions keep theirs. */
  reload(loaded: LoadedConfig): void {
    const old = this.#runtime;
    this.#tls.reload(loaded.config, loaded.listeners, 'configuration reload');
    this.#runtime = createRuntime(loaded, this.#log, { health: this.#health, disconnects: this.#disconnects, penalty: this.#penalty, tls: this.#tls, limits: this.#limits });
    void old.passdbs.close();
    // Connections made with the old settings (TLS towards backends, source addresses) are not
    // handed to new sessions: the old runtime's idle ones get QUIT, and so do those its sessions release later.
    old.lmtpIdle.close();
    this.#metrics.configReloaded(true);
    this.#log.info({ file: loaded.file }, 'configuration reloaded');
  }

  /** A reload was refused: the running configuration stays (reported in metrics). */
  reloadFailed(): void {
    this.#metrics.configReloaded(false);
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
      const frontend = FRONTENDS[s.listener.protocol];
      if (frontend?.shutdown !== undefined) frontend.shutdown(s);
      else if (s.state !== 'spliced') s.close('shutdown', 'Disconnected: server shutting down', frontend?.goodbye(s, 'shutdown'));
    }
    const deadline = Date.now() + deadlineMs;
    while (this.#sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of this.#sessions) s.socket.destroy();
    this.#runtime.lmtpIdle.close();
    await closing;
    await this.#admin?.close();
    await this.#adminSocket?.close();
    this.#metrics.close();
    await this.#runtime.passdbs.close();
    await this.#penalty.close();
    this.#tls.close();
  }

  #sessionCounts(): { protocol: string; state: string; count: number }[] {
    const counts = new Map<string, { protocol: string; state: string; count: number }>();
    for (const s of this.#sessions) {
      const key = `${s.listener.protocol}/${s.state}`;
      const c = counts.get(key);
      if (c) c.count++;
      else counts.set(key, { protocol: s.listener.protocol, state: s.state, count: 1 });
    }
    return [...counts.values()];
  }

  #track(session: ClientSession): void {
    if (this.#stopping) {
      session.close('shutdown', 'Disconnected: server shutting down', FRONTENDS[session.listener.protocol]?.goodbye(session, 'shutdown'));
      return;
    }
    if (!this.#admit(session)) return;
    this.#sessions.add(session);
    session.onEnd(this.#untrack);
  }

  /** One function for every session (a closure each would be kept for the session's life). */
  readonly #untrack = (session: ClientSession): void => {
    this.#sessions.delete(session);
  };

  /**
   * Pre-auth limits for the login protocols (LMTP has no login; its clients are MTAs): too
   * many from one address is refused, a full house sheds its oldest idle client. On an
   * implicit-TLS listener nothing is written before the handshake, so a refusal is a close.
   */
  #admit(session: ClientSession): boolean {
    if (session.listener.protocol === 'lmtp') return true;
    const verdict = this.#limits.admitPreauth(session);
    const frontend = FRONTENDS[session.listener.protocol];
    if (verdict.kind === 'refuse') {
      const perIp = verdict.why === 'per-ip';
      const reply = session.listener.ssl ? undefined : frontend?.goodbye(session, perIp ? 'per-ip' : 'full');
      session.log.warn(
        { rip: session.peer.remoteIp, limit: perIp ? session.runtime.config.login_max_preauth_per_ip : session.runtime.config.login_max_preauth },
        perIp ? 'connection refused: too many connections not logged in from this address (login_max_preauth_per_ip)' : 'connection refused: login_max_preauth reached and no idle client to shed',
      );
      session.close(perIp ? 'too_many_connections' : 'connection_queue_full', 'Disconnected: connection limit', reply);
      return false;
    }
    const shed = verdict.shed;
    if (shed !== undefined) {
      shed.log.info({ rip: shed.peer.remoteIp, limit: session.runtime.config.login_max_preauth }, 'oldest client not logged in shed to make room (login_max_preauth)');
      const greeted = shed.state === 'pre-auth';
      shed.close('connection_queue_full', 'Disconnected: connection queue full', greeted ? FRONTENDS[shed.listener.protocol]?.goodbye(shed, 'full') : undefined);
    }
    return true;
  }

  async #closeListeners(): Promise<void> {
    const bound = this.#bound;
    this.#bound = [];
    await Promise.all(bound.map((b) => new Promise<void>((resolve) => b.server.close(() => resolve()))));
  }
}
