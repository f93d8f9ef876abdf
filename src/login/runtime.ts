/**
 * Everything a session needs from the running process, built from one configuration.
 * A reload builds a new Runtime; sessions keep the one they started with.
 */
import type { BlockList } from 'node:net';
import { hostname } from 'node:os';
import type { LoadedConfig, ListenerSpec } from '../config/load.js';
import type { Config, Protocol } from '../config/schema.js';
import { BackendHealth } from '../backend/health.js';
import { IdleBackends } from '../backend/idle.js';
import type { LocalBackend } from '../backend/route.js';
import { SourceIps } from '../backend/source-ips.js';
import { DisconnectSpreader } from '../splice/spread.js';
import { netBlockList } from '../config/types.js';
import { PassdbChain } from '../passdb/chain.js';
import { AuthPenalty } from '../passdb/penalty.js';
import { ConnectionLimits } from './limits.js';
import type { BackendConnection } from '../lmtp/upstream.js';
import type { Logger } from '../telemetry/log.js';
import { TlsStore } from '../tls/store.js';

export interface Runtime {
  readonly config: Readonly<Config>;
  readonly listeners: readonly ListenerSpec[];
  readonly log: Logger;
  readonly hostname: string;
  readonly passdbs: PassdbChain;
  /** Failure penalty per client IP; process-wide when the server passes one in. */
  readonly penalty: AuthPenalty;
  readonly tls: TlsStore;
  readonly trustedNetworks: BlockList;
  readonly haproxyTrustedNetworks: BlockList;
  /** Process-wide: survives reloads, shared by every session. */
  readonly health: BackendHealth;
  readonly sourceIps: SourceIps;
  readonly disconnects: DisconnectSpreader;
  /** Process-wide: pre-auth and user+IP connection counts. */
  readonly limits: ConnectionLimits;
  readonly localBackends: Readonly<Partial<Record<Protocol, LocalBackend>>>;
  /**
   * LMTP backend connections no client session holds (backend/idle.ts), for this runtime's
   * sessions: a reload starts with none (the old ones were made with the old settings).
   */
  readonly lmtpIdle: IdleBackends<BackendConnection>;
}

export interface SharedState {
  readonly tls?: TlsStore | undefined;
  readonly health?: BackendHealth | undefined;
  readonly disconnects?: DisconnectSpreader | undefined;
  readonly penalty?: AuthPenalty | undefined;
  readonly limits?: ConnectionLimits | undefined;
}

export function createRuntime(loaded: LoadedConfig, log: Logger, shared: SharedState = {}): Runtime {
  const config = loaded.config;
  const localBackends: Partial<Record<Protocol, LocalBackend>> = {};
  for (const [protocol, hostPort] of Object.entries(config.local_backend) as [Protocol, string][]) {
    const at = hostPort.lastIndexOf(':');
    localBackends[protocol] = { host: hostPort.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(at + 1)) };
  }
  return {
    config,
    listeners: loaded.listeners,
    log,
    hostname: config.hostname ?? hostname(),
    passdbs: new PassdbChain(config, log),
    penalty: shared.penalty ?? AuthPenalty.fromConfig(config, log),
    tls: shared.tls ?? new TlsStore(config, loaded.listeners),
    trustedNetworks: netBlockList(config.login_trusted_networks),
    haproxyTrustedNetworks: netBlockList(config.haproxy_trusted_networks),
    health: shared.health ?? new BackendHealth(() => config.proxy_host_immediate_failure_after),
    sourceIps: new SourceIps(config.login_source_ips),
    disconnects: shared.disconnects ?? new DisconnectSpreader(() => config.login_proxy_max_disconnect_delay),
    limits: shared.limits ?? new ConnectionLimits(),
    localBackends,
    lmtpIdle: new IdleBackends({ onDrop: (conn, why) => log.debug({ backend: conn.route.name, why }, 'idle LMTP backend connection closed') }),
  };
}
