/**
 * Connection limits of one process (ecosystem.md §2.3 items 8 and 9, tests R13 and R27):
 *
 * - clients not logged in yet: at most `login_max_preauth_per_ip` from one address (IPv6 per
 *   `auth_penalty_ipv6_prefix` network), login_trusted_networks exempt, and at most
 *   `login_max_preauth` in all; when that is full the oldest one still waiting for a command
 *   is shed to make room, as Dovecot drops its oldest pre-login connection, so a slowloris
 *   crowd cannot keep new clients out;
 * - proxied sessions: at most `mail_max_userip_connections` per protocol, user and client
 *   address (Dovecot's anvil key), counted from the backend login until the session ends.
 *
 * Counts are per process (per worker with `workers` > 1). A session leaves the pre-auth
 * count when it ends or is handed to the splice (loggedIn).
 */
import { penaltyBucket } from '../listen/netmatch.js';
import type { ClientSession } from './session.js';

/** Pre-login states in which a session is only waiting for its client; the ones that may be shed. */
const IDLE_STATES: ReadonlySet<ClientSession['state']> = new Set(['pre-auth', 'tls-handshake', 'starttls']);

/** Dovecot's refusal text (login-common sasl-server.c ERR_TOO_MANY_USERIP_CONNECTIONS). */
export function userIpText(max: number): string {
  return `Maximum number of connections from user+IP exceeded (mail_max_userip_connections=${max})`;
}

export type PreauthVerdict =
  | { readonly kind: 'admit'; readonly shed?: ClientSession | undefined }
  | { readonly kind: 'refuse'; readonly why: 'per-ip' | 'full' };

export class ConnectionLimits {
  /** Tracked sessions and the network each is counted under; insertion order is age. */
  readonly #preauth = new Map<ClientSession, string | undefined>();
  readonly #byNet = new Map<string, Set<ClientSession>>();
  readonly #userIp = new Map<string, number>();

  /**
   * Decide for a new connection (before its greeting or TLS handshake). An admitted session
   * is tracked until it ends or leaves the pre-auth states; `shed` is an older one the caller
   * must close to make room.
   */
  admitPreauth(session: ClientSession): PreauthVerdict {
    const config = session.runtime.config;
    const perIp = config.login_max_preauth_per_ip;
    const total = config.login_max_preauth;
    // Counted per network only while the per-IP limit is on (a reload that turns it on counts new clients).
    const net = perIp > 0 && !session.trusted ? penaltyBucket(session.peer.remoteIp, config.auth_penalty_ipv6_prefix) : undefined;
    if (perIp > 0 && net !== undefined && (this.#byNet.get(net)?.size ?? 0) >= perIp) return { kind: 'refuse', why: 'per-ip' };
    let shed: ClientSession | undefined;
    if (total > 0 && this.#preauth.size >= total) {
      for (const s of this.#preauth.keys()) {
        if (IDLE_STATES.has(s.state)) {
          shed = s;
          break;
        }
      }
      if (shed === undefined) return { kind: 'refuse', why: 'full' };
      this.#forget(shed);
    }
    this.#preauth.set(session, net);
    if (net !== undefined) {
      let set = this.#byNet.get(net);
      if (set === undefined) this.#byNet.set(net, (set = new Set()));
      set.add(session);
    }
    session.onEnd(this.#onEnd);
    return { kind: 'admit', shed };
  }

  /** The session was handed to the splice: it no longer counts as not logged in. */
  loggedIn(session: ClientSession): void {
    this.#forget(session);
  }

  /** Sessions not logged in yet (for tests and metrics). */
  get preauthCount(): number {
    return this.#preauth.size;
  }

  /**
   * Take a slot for a proxied session of `user` from `ip`; undefined when `max` are in use
   * (0: no limit). The caller gives the returned slot back with releaseUserIp exactly once
   * (the same string: its hash is computed once, not again for a string built anew).
   */
  acquireUserIp(protocol: string, ip: string, user: string, max: number): string | undefined {
    const key = `${protocol}/${ip}/${user}`;
    const n = this.#userIp.get(key) ?? 0;
    if (max > 0 && n >= max) return undefined;
    this.#userIp.set(key, n + 1);
    return key;
  }

  releaseUserIp(slot: string): void {
    const n = (this.#userIp.get(slot) ?? 0) - 1;
    if (n > 0) this.#userIp.set(slot, n);
    else this.#userIp.delete(slot);
  }

  /** Proxied sessions counted for this user and address (for tests and listings). */
  userIpCount(protocol: string, ip: string, user: string): number {
    return this.#userIp.get(`${protocol}/${ip}/${user}`) ?? 0;
  }

  /** How many user+address keys hold slots (0 when everything was released: no leak). */
  get userIpKeys(): number {
    return this.#userIp.size;
  }

  /** One function for every session (a closure each would be kept for the session's life). */
  readonly #onEnd = (session: ClientSession): void => this.#forget(session);

  #forget(session: ClientSession): void {
    if (!this.#preauth.has(session)) return;
    const net = this.#preauth.get(session);
    this.#preauth.delete(session);
    if (net === undefined) return;
    const set = this.#byNet.get(net);
    set?.delete(session);
    if (set?.size === 0) this.#byNet.delete(net);
  }
}
