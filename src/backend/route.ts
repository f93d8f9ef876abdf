/**
 * Where a proxied login goes: a pure function of the passdb's proxy target, the resolved
 * destination addresses and the connection's own facts. "Self" is decided as Dovecot does
 * (auth-request.c auth_request_proxy_is_self): an address of the destination is the
 * connection's local address or in auth_proxy_self, and the port is absent or ours.
 */
import { failure, type ProxyFailure } from './failure.js';
import type { ProxyTarget } from '../passdb/fields.js';

export interface LocalBackend {
  readonly host: string;
  readonly port: number;
}

export interface RouteInput {
  readonly target: ProxyTarget;
  /** Addresses `host` resolved to (or `hostip`), in order. */
  readonly addresses: readonly string[];
  /** The destination port after defaults. */
  readonly port: number;
  readonly user: string;
  readonly destuser: string;
  /** This connection's local address(es) plus auth_proxy_self, and its local port. */
  readonly selfAddresses: ReadonlySet<string>;
  readonly selfPort: number;
  /** The hop TTL this login would send on (already lowered by one). */
  readonly ttl: number;
  /** Where `proxy_maybe` logins that point at this host are served. */
  readonly localBackend?: LocalBackend | undefined;
}

export type Route =
  | { readonly kind: 'remote'; readonly address: string; readonly port: number }
  /** `proxy_maybe` pointing at this host: the co-located backend, without spending TTL. */
  | { readonly kind: 'local'; readonly backend: LocalBackend }
  | { readonly kind: 'refuse'; readonly failure: ProxyFailure };

/** proxy_maybe's "self": one of the addresses is ours and the port is absent or ours. */
export function isSelf(input: Pick<RouteInput, 'target' | 'addresses' | 'port' | 'selfAddresses' | 'selfPort'>): boolean {
  const portMatches = input.target.port === undefined || input.port === input.selfPort;
  return portMatches && input.addresses.some((a) => input.selfAddresses.has(a));
}

/** proxy's loop check (login_proxy_is_ourself): exactly our address and port. */
function isOurListener(input: RouteInput): boolean {
  return input.port === input.selfPort && input.addresses.some((a) => input.selfAddresses.has(a));
}

export function decideRoute(input: RouteInput): Route {
  const dest = `${input.target.host}:${input.port}`;
  const first = input.addresses[0];
  if (first === undefined) return { kind: 'refuse', failure: failure('connect', `${input.target.host} has no address`) };
  if (input.target.mode === 'proxy_maybe' && isSelf(input)) {
    if (input.target.always) {
      return { kind: 'refuse', failure: failure('config', `proxy_always: ${dest} is this host and no placement is configured to choose a backend`) };
    }
    if (input.localBackend === undefined) {
      return { kind: 'refuse', failure: failure('config', `proxy_maybe: ${dest} is this host and no local_backend is configured`) };
    }
    return { kind: 'local', backend: input.localBackend };
  }
  if (input.ttl <= 0) return { kind: 'refuse', failure: failure('loop', `TTL reached zero - proxies appear to be looping? (backend ${dest})`) };
  // Same address, same port, same user: the login would come straight back here.
  if (isOurListener(input) && input.destuser === input.user) {
    return { kind: 'refuse', failure: failure('loop', `Proxying loops to itself: ${dest}`) };
  }
  return { kind: 'remote', address: first, port: input.port };
}
