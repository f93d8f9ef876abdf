/**
 * The closed taxonomy of ways a proxied login can fail. The kind alone decides whether to
 * retry, which reply class the client gets, and the log level (Dovecot login-proxy failure
 * types, plus `host-down` for the immediate-failure rule).
 */
import { errorText } from '../errors.js';

export type ProxyFailureKind =
  /** TCP connect refused, unreachable, or DNS failed. Retried. */
  | 'connect'
  /** proxy_timeout ran out during connect or the upstream login. */
  | 'timeout'
  /** TLS handshake or certificate verification failed. Not retried. */
  | 'tls'
  /** The backend closed or errored before the login finished. Retried. */
  | 'remote'
  /** The backend said something the protocol does not allow here. */
  | 'protocol'
  /** Our configuration and the backend disagree (no STARTTLS, LOGINDISABLED, TTL used up). */
  | 'config'
  /** Backend refused the credentials (generic reply, nothing relayed). */
  | 'auth-failed'
  /** Backend refused with a specific, safe-to-relay reason (IMAP response code, POP3 [IN-USE]). */
  | 'auth-replied'
  /** Backend said "temporarily unavailable". Retried, then relayed. */
  | 'remote-tempfail'
  /** The destination is this proxy itself, or the hop TTL ran out. */
  | 'loop'
  /** The backend failed recently and repeatedly: fail at once instead of waiting again. */
  | 'host-down';

export interface ProxyFailure {
  readonly kind: ProxyFailureKind;
  /** For the log only; never shown to the client. */
  readonly detail: string;
  /** The backend's own reply line, for kinds that relay it (`auth-replied`, `remote-tempfail`). */
  readonly relay?: string | undefined;
}

export const RETRYABLE: ReadonlySet<ProxyFailureKind> = new Set(['connect', 'remote', 'remote-tempfail']);

/** Failures that are the backend's or the network's fault: logged as warnings, not info. */
export const BACKEND_FAULT: ReadonlySet<ProxyFailureKind> = new Set(['connect', 'timeout', 'tls', 'remote', 'protocol', 'config', 'remote-tempfail', 'host-down']);

export function failure(kind: ProxyFailureKind, detail: string, relay?: string): ProxyFailure {
  return relay === undefined ? { kind, detail } : { kind, detail, relay };
}

/** Thrown inside upstream dialogues; caught by the proxy driver and turned into a result. */
export class ProxyFailureError extends Error {
  readonly failure: ProxyFailure;

  constructor(f: ProxyFailure) {
    super(f.detail);
    this.failure = f;
  }
}

/** What a caught error means for the proxy: its failure if it is one, else a bug (`protocol`, internal error). */
export function asFailure(err: unknown): ProxyFailure {
  return err instanceof ProxyFailureError ? err.failure : failure('protocol', `internal error: ${errorText(err)}`);
}
