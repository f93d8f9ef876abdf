/**
 * Every reply an IMAP client can get from portier's login phase, in one table (RFC 5530
 * response codes). Texts are fixed: no backend or internal detail reaches the client.
 * docs/imap.md lists them with the reason each is sent.
 */
import type { ProxyFailure } from '../backend/failure.js';
import type { AuthOutcome } from '../login/auth.js';
import { safeText } from '../login/flow.js';
import { userIpText } from '../login/limits.js';

export const REPLY = {
  authFailed: 'NO [AUTHENTICATIONFAILED] Authentication failed.',
  tempFail: 'NO [UNAVAILABLE] Temporary authentication failure.',
  unavailable: 'NO [UNAVAILABLE] Account is temporarily unavailable.',
  serverBug: 'NO [SERVERBUG] Account is temporarily unavailable.',
  disabled: 'NO [CONTACTADMIN] Login disabled for this user.',
  privacyRequired: 'NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.',
  tlsRequired: 'NO [PRIVACYREQUIRED] Authentication requires TLS: use STARTTLS first.',
  mechUnsupported: 'NO Unsupported authentication mechanism.',
  authAborted: 'BAD Authentication aborted by client.',
  authMalformed: 'BAD Invalid base64 or malformed SASL response.',
  alreadyTls: 'BAD TLS is already active.',
  noTls: 'BAD TLS support is not enabled.',
  beginTls: 'OK Begin TLS negotiation now.',
  byeTooManyBad: '* BYE Too many invalid IMAP commands.',
  byeTimeout: '* BYE Disconnected for inactivity.',
  byeShutdown: '* BYE [UNAVAILABLE] Server shutting down.',
  byeTooManyFromIp: '* BYE [UNAVAILABLE] Too many connections from your address.',
  byeQueueFull: '* BYE [UNAVAILABLE] Connection queue full.',
  byeLineTooLong: '* BYE Too long command line.',
  byeLiteralTooLarge: '* BYE Literal too large.',
  byeLogout: '* BYE Logging out',
} as const;

/** The tagged reply (without tag) for a login that did not reach a backend. */
export function authOutcomeReply(outcome: Exclude<AuthOutcome, { kind: 'proxy' }>, sessionId: string): string {
  switch (outcome.kind) {
    case 'failed':
      return REPLY.authFailed;
    case 'tempfail':
      return `${REPLY.tempFail.slice(0, -1)}. [session ${sessionId}]`;
    case 'disabled':
      return outcome.reason !== undefined ? `NO [CONTACTADMIN] ${safeText(outcome.reason)}` : REPLY.disabled;
    case 'referral':
      return outcome.nologin
        ? `NO [REFERRAL ${referralUrl(outcome)}] Try this server instead.`
        : REPLY.unavailable;
    case 'no-route':
      return REPLY.unavailable;
    case 'userip-limit':
      return `NO [UNAVAILABLE] ${userIpText(outcome.max)}`;
  }
}

/** The tagged reply (without tag) for a proxied login that failed. */
export function proxyFailureReply(f: ProxyFailure): string {
  switch (f.kind) {
    case 'auth-failed':
      return REPLY.authFailed;
    case 'auth-replied':
    case 'remote-tempfail':
      return f.relay ?? REPLY.unavailable;
    case 'config':
    case 'loop':
      return REPLY.serverBug;
    case 'connect':
    case 'timeout':
    case 'tls':
    case 'remote':
    case 'protocol':
    case 'host-down':
      return REPLY.unavailable;
  }
}

/** RFC 2221 login referral URL: imap://user;AUTH=*@host[:port]/ */
export function referralUrl(r: { user: string; host: string; port?: number | undefined; destuser?: string | undefined }): string {
  const user = encodeURIComponent(r.destuser ?? r.user);
  const host = r.host.includes(':') ? `[${r.host}]` : r.host;
  return `imap://${user};AUTH=*@${host}${r.port !== undefined && r.port !== 143 ? `:${r.port}` : ''}/`;
}
