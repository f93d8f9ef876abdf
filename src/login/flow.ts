/**
 * The last step of a login, shared by every splicing front-end (IMAP, POP3): ask the passdbs,
 * log in to the backend, then splice or reply. A protocol supplies only its words (reply
 * texts, upstream dialogue, goodbye); the order of events and their logging live here.
 */
import type { ProxyFailure } from '../backend/failure.js';
import { splice, type SpliceOptions } from '../splice/splice.js';
import { authenticate, type AuthOutcome, type LoginCredentials } from './auth.js';
import { proxyLogin, type ProtocolUpstream } from './proxy.js';
import type { ClientSession } from './session.js';
import { clientCertGate } from '../tls/client-cert.js';
import { userIpText } from './limits.js';

export interface LoginWords {
  readonly upstream: ProtocolUpstream;
  /** The whole reply line (no CRLF) for a login that did not reach a backend. */
  outcomeReply(outcome: Exclude<AuthOutcome, { kind: 'proxy' }>, sessionId: string): string;
  /** The whole reply line (no CRLF) for a proxied login that failed. */
  failureReply(failure: ProxyFailure): string;
  /** The protocol's goodbye when a spliced backend goes away without one. */
  readonly goodbye?: SpliceOptions['goodbye'];
}

export interface LoginIo {
  reply(line: string): void;
  /** Client bytes read past the login command: they belong to the backend. */
  drain(): Buffer;
}

/** 'stop' when the session was handed to the splice (or ended); 'continue' to read the next command. */
export async function runLogin(s: ClientSession, creds: LoginCredentials, words: LoginWords, io: LoginIo): Promise<'continue' | 'stop'> {
  s.state = 'authenticating';
  // auth_ssl_require_client_cert / auth_ssl_username_from_cert decide before any passdb is asked.
  const gate = clientCertGate(s, creds);
  const outcome = gate.ok ? await authenticate(s, gate.creds) : gate.outcome;
  if (s.ended) return 'stop';
  if (outcome.kind !== 'proxy') {
    s.state = 'pre-auth';
    if (outcome.kind === 'failed') s.authFailures++;
    logRefusal(s, outcome, creds.mech);
    io.reply(words.outcomeReply(outcome, s.id));
    return 'continue';
  }
  // Dovecot's mail_max_userip_connections, counted here for proxied sessions too (2.3 counts
  // only at the backend); the slot is held from the backend login until the session ends.
  const limits = s.runtime.limits;
  const max = s.runtime.config.mail_max_userip_connections;
  const slot = limits.acquireUserIp(s.listener.protocol, s.peer.remoteIp, outcome.user, max);
  if (slot === undefined) {
    s.state = 'pre-auth';
    const refusal = { kind: 'userip-limit', user: outcome.user, max } as const;
    logRefusal(s, refusal, creds.mech);
    io.reply(words.outcomeReply(refusal, s.id));
    return 'continue';
  }
  s.userIpSlot = slot;
  s.onEnd(releaseUserIp);
  s.state = 'backend-login';
  const result = await proxyLogin(s, outcome, words.upstream);
  if (s.ended) {
    if (result.ok) result.socket.destroy();
    return 'stop';
  }
  if (!result.ok) {
    releaseUserIp(s);
    s.state = 'pre-auth';
    if (result.failure.kind === 'auth-failed') s.authFailures++;
    io.reply(words.failureReply(result.failure));
    return 'continue';
  }
  s.socket.write(result.reply);
  splice(s, {
    backend: result.socket,
    backendName: result.backend,
    clientRest: io.drain(),
    backendRest: result.rest,
    idleTimeoutMs: s.runtime.config.login_proxy_idle_timeout,
    bufferSize: s.runtime.config.login_proxy_buffer_size,
    goodbye: words.goodbye,
  });
  limits.loggedIn(s);
  return 'stop';
}

/** Give back the session's mail_max_userip_connections slot, if it holds one (shared by all sessions: no closure each). */
function releaseUserIp(s: ClientSession): void {
  const slot = s.userIpSlot;
  if (slot === undefined) return;
  s.userIpSlot = undefined;
  s.runtime.limits.releaseUserIp(slot);
}

function logRefusal(s: ClientSession, outcome: Exclude<AuthOutcome, { kind: 'proxy' }>, mech: string): void {
  const why = 'why' in outcome ? outcome.why : undefined;
  const level = outcome.kind === 'tempfail' || outcome.kind === 'no-route' ? 'warn' : 'info';
  const msg =
    outcome.kind === 'no-route'
      ? 'login refused: the passdb result has no proxy destination (portier only proxies; set proxy and host)'
      : outcome.kind === 'userip-limit'
        ? `login refused: ${userIpText(outcome.max)}`
        : `login refused: ${outcome.kind}`;
  s.log[level]({ user: s.user, method: mech, rip: s.peer.remoteIp, why }, msg);
}

/** Text from a passdb (`reason`) or a relayed backend line shown to a client: one printable line, bounded. */
export function safeText(text: string, fallback = 'Login disabled for this user.'): string {
  const clean = text.replace(/[^\x20-\x7e]/g, ' ').trim().slice(0, 200);
  return clean === '' ? fallback : clean;
}
