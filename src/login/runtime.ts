/**
 * Everything a session needs from the running process, built from one configuration.
 * A reload builds a new Runtime; sessions keep the one they started with.
 */
import type { BlockList } from 'node:net';
import { hostname } from 'node:os';
import type { LoadedConfig, ListenerSpec } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { netBlockList } from '../config/types.js';
import { PassdbChain } from '../passdb/chain.js';
import type { Logger } from '../telemetry/log.js';
import { TlsStore } from '../tls/store.js';

export interface Runtime {
  readonly config: Readonly<Config>;
  readonly listeners: readonly ListenerSpec[];
  readonly log: Logger;
  readonly hostname: string;
  readonly passdbs: PassdbChain;
  readonly tls: TlsStore;
  readonly trustedNetworks: BlockList;
  readonly haproxyTrustedNetworks: BlockList;
}

export function createRuntime(loaded: LoadedConfig, log: Logger, tls?: TlsStore): Runtime {
  const config = loaded.config;
  return {
    config,
    listeners: loaded.listeners,
    log,
    hostname: config.hostname ?? hostname(),
    passdbs: new PassdbChain(config, log),
    tls: tls ?? new TlsStore(config, loaded.listeners),
    trustedNetworks: netBlockList(config.login_trusted_networks),
    haproxyTrustedNetworks: netBlockList(config.haproxy_trusted_networks),
  };
}
