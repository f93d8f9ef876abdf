/**
 * Drives one proxied login: loop check, connect (with reconnects inside proxy_timeout),
 * implicit TLS, then the protocol's upstream dialogue. Returns the connected backend ready for
 * the splice, or a typed failure for the front-end's reply table. proxy_timeout covers exactly
 * connect + upstream login; the splice has its own idle limit.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { BackendReader, connectTcp, knownAddresses, resolveHost, startClientTls, type Endpoint } from '../backend/connect.js';
import { Deadline, type Cancel } from '../backend/deadline.js';
import { asFailure, BACKEND_FAULT, failure, ProxyFailureError, RETRYABLE, type ProxyFailure } from '../backend/failure.js';
import { decideRoute } from '../backend/route.js';
import { publishProxy } from '../telemetry/events.js';
import type { Socket } from 'node:net';
import type { AuthOutcome } from './auth.js';
import type { ClientSession } from './session.js';

export type ProxyOutcome = Extract<AuthOutcome, { kind: 'proxy' }>;

/** Dovecot's LOGIN_PROXY_TTL: hops a login may take before it is taken for a loop. */
export const DEFAULT_PROXY_TTL = 5;

export interface UpstreamContext {
  readonly session: ClientSession;
  readonly outcome: ProxyOutcome;
  readonly reader: BackendReader;
  readonly endpoint: Endpoint;
  readonly signal: Cancel;
  /** The TTL to send to the backend (already lowered by one for this hop). */
  readonly ttl: number;
  /** The user name for the backend login (destuser, else the user). */
  readonly destuser: string;
  /** TLS options for a STARTTLS upgrade towards this backend. */
  tlsOptions(): ConnectionOptions;
}

/**
 * A protocol's upstream login: resolves with the bytes for the client and whatever the backend
 * sent after its login reply (read but not consumed: it goes to the splice), or throws
 * ProxyFailureError.
 */
export type UpstreamLogin = (ctx: UpstreamContext) => Promise<{ reply: Buffer; rest: Buffer }>;

export interface ProtocolUpstream {
  readonly defaultPort: number;
  readonly defaultSslPort: number;
  readonly login: UpstreamLogin;
}

export type ProxyResult =
  | { readonly ok: true; readonly socket: Socket; readonly rest: Buffer; readonly reply: Buffer; readonly backend: string }
  | { readonly ok: false; readonly failure: ProxyFailure; readonly backend: string };

export async function proxyLogin(session: ClientSession, outcome: ProxyOutcome, upstream: ProtocolUpstream): Promise<ProxyResult> {
  const started = Date.now();
  // A plain timer cleared when the login is over (deadline.ts): AbortSignal.timeout() keeps a
  // timer and a finalization record alive for the whole proxy_timeout, an AbortController an
  // EventTarget per login.
  const deadline = new Deadline(outcome.target.timeoutMs ?? session.runtime.config.login_proxy_timeout);
  let result: ProxyResult;
  try {
    result = await connectAndLogin(session, outcome, upstream, deadline);
  } finally {
    deadline.clear();
  }
  publishProxy({
    protocol: session.listener.protocol,
    backend: result.backend,
    ok: result.ok,
    failure: result.ok ? undefined : result.failure.kind,
    seconds: (Date.now() - started) / 1000,
  });
  return result;
}

async function connectAndLogin(session: ClientSession, outcome: ProxyOutcome, upstream: ProtocolUpstream, signal: Deadline): Promise<ProxyResult> {
  const { config, tls, health } = session.runtime;
  const target = outcome.target;
  const port = target.port ?? (target.tls === 'ssl' ? upstream.defaultSslPort : upstream.defaultPort);
  let backend = `${target.host}:${port}`;
  const started = Date.now();
  const destuser = target.destuser ?? outcome.user;
  const selfAddresses = new Set([session.peer.realLocalIp, ...config.auth_proxy_self]);
  const refuse = (f: ProxyFailure): ProxyResult => {
    session.log.warn({ user: outcome.user, backend, failure: f.kind }, `proxy login refused: ${f.detail}`);
    return { ok: false, backend, failure: f };
  };
  let attempt = 0;
  for (;;) {
    let reader: BackendReader | undefined;
    let key: string | undefined;
    let probe = false;
    try {
      const addresses = target.hostip !== undefined ? [target.hostip] : (knownAddresses(target.host) ?? (await resolveHost(target.host, signal)));
      const route = decideRoute({
        target,
        addresses,
        port,
        user: outcome.user,
        destuser,
        selfAddresses,
        selfPort: session.listener.port,
        ttl: session.proxyTtl - 1,
        localBackend: session.runtime.localBackends[session.listener.protocol],
      });
      if (route.kind === 'refuse') return refuse(route.failure);
      const local = route.kind === 'local';
      const address = local ? route.backend.host : route.address;
      const dport = local ? route.backend.port : route.port;
      backend = local ? `${address}:${dport} (local)` : `${target.host}:${dport}`;
      key = `${address}:${dport}`;
      const admission = health.admit(key);
      if (!admission.go) {
        return refuse(failure('host-down', `Host is down: ${backend} has failed for ${Math.round(admission.failingForMs / 1000)}s without a success`));
      }
      probe = admission.probe;
      const endpoint: Endpoint = {
        host: local ? address : target.host,
        address,
        port: dport,
        sourceIp: target.sourceIp ?? session.runtime.sourceIps.next(),
      };
      // The co-located backend of proxy_maybe is reached in plaintext, as a local login would be.
      const plaintext = local || target.tls === 'none';
      let socket: Socket = await connectTcp(endpoint, signal, plaintext);
      // ssl_server_name (else host) is verified and sent as SNI; only ssl_client_ca_* is trusted when set.
      let upstreamTls: ReturnType<typeof tls.upstreamOptions> | undefined;
      const tlsOptions = (): ReturnType<typeof tls.upstreamOptions> => (upstreamTls ??= tls.upstreamOptions(target));
      if (!local && target.tls === 'ssl') socket = await startClientTls(socket, tlsOptions().host, tlsOptions(), signal);
      reader = new BackendReader(socket, signal, `backend ${backend}`);
      const { reply, rest: framed } = await upstream.login({
        session,
        outcome: local ? { ...outcome, target: { ...target, tls: 'none' } } : outcome,
        reader,
        endpoint,
        signal,
        // A local login is not a hop: the TTL is passed on unchanged.
        ttl: local ? session.proxyTtl : session.proxyTtl - 1,
        destuser,
        tlsOptions,
      });
      const detached = reader.detach();
      const connected = detached.socket;
      const rest = framed.length === 0 ? detached.rest : Buffer.concat([framed, detached.rest]);
      health.succeeded(key);
      if (session.log.enabled('info')) {
        session.log.info(
          { user: outcome.user, destuser, master: outcome.masterUser, backend, reconnects: attempt || undefined, login_ms: Date.now() - started },
          `Started proxying to ${backend}`,
        );
      }
      return { ok: true, socket: connected, rest, reply, backend };
    } catch (err) {
      reader?.destroy();
      const f = asFailure(err);
      if (key !== undefined) {
        if (HEALTH_FAILURES.has(f.kind)) health.failed(key, probe);
        else health.released(key, probe);
      }
      const level = BACKEND_FAULT.has(f.kind) ? 'warn' : 'info';
      session.log[level]({ user: outcome.user, backend, failure: f.kind, attempt }, `proxy login failed: ${f.detail}`);
      if (!RETRYABLE.has(f.kind) || attempt >= config.login_proxy_max_reconnects || signal.aborted) {
        return { ok: false, backend, failure: signal.aborted && f.kind !== 'timeout' ? failure('timeout', f.detail) : f };
      }
      attempt++;
      try {
        await signal.sleep(Math.min(1000, 100 * 2 ** (attempt - 1)), () => new Error('proxy_timeout'));
      } catch {
        return { ok: false, backend, failure: failure('timeout', `gave up after ${attempt} attempts: ${f.detail}`) };
      }
    }
  }
}

/** Failures that say the backend (or the way to it) is not working, for the health record. */
const HEALTH_FAILURES: ReadonlySet<ProxyFailure['kind']> = new Set(['connect', 'timeout', 'remote']);
