/**
 * Every reply a POP3 client can get from portier's login phase, in one table (RFC 3206
 * response codes, RFC 2449 §8). Texts are fixed: no backend or internal detail reaches the
 * client, except the [IN-USE]/[LOGIN-DELAY] refusals that only follow a correct password.
 * docs/pop3.md lists them with the reason each is sent.
 */
import type { ProxyFailure } from '../backend/failure.js';
import type { AuthOutcome } from '../login/auth.js';
import { safeText } from '../login/flow.js';
import { userIpText } from '../login/limits.js';

export const REPLY = {
  authFailed: '-ERR [AUTH] Authentication failed.',
  tempFail: '-ERR [SYS/TEMP] Temporary authentication failure.',
  unavailable: '-ERR [SYS/TEMP] Account is temporarily unavailable.',
  disabled: '-ERR [AUTH] Login disabled for this user.',
  plaintextDisallowed: '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.',
  tlsRequired: '-ERR [AUTH] Authentication requires TLS: use STLS first.',
  mechUnsupported: '-ERR [AUTH] Unsupported authentication mechanism.',
  authAborted: '-ERR Authentication aborted by client.',
  invalidBase64: '-ERR [AUTH] Invalid base64 data.',
  saslMalformed: '-ERR [AUTH] Malformed SASL response.',
  noUser: '-ERR No username given.',
  missingArgs: '-ERR Missing arguments.',
  noArgs: '-ERR This command takes no arguments.',
  unknownCommand: '-ERR Unknown command.',
  apopDisabled: '-ERR APOP not enabled.',
  apopInvalid: '-ERR Invalid APOP parameters.',
  userOk: '+OK',
  capa: '+OK Capability list follows',
  authList: '+OK Mechanisms follow',
  beginTls: '+OK Begin TLS negotiation now.',
  alreadyTls: '-ERR TLS is already active.',
  noTls: "-ERR TLS support isn't enabled.",
  logout: '+OK Logging out.',
  tooManyBad: '-ERR Too many invalid commands.',
  lineTooLong: '-ERR Too long command line.',
  timeout: '-ERR Disconnected for inactivity.',
  shutdown: '-ERR [SYS/TEMP] Server shutting down.',
  tooManyFromIp: '-ERR [SYS/TEMP] Too many connections from your address.',
  queueFull: '-ERR [SYS/TEMP] Connection queue full.',
  internalError: '-ERR [SYS/TEMP] Internal error occurred. Refer to server log for more information.',
} as const;

/** The reply for a login that did not reach a backend. */
export function authOutcomeReply(outcome: Exclude<AuthOutcome, { kind: 'proxy' }>, sessionId: string): string {
  switch (outcome.kind) {
    case 'failed':
      return REPLY.authFailed;
    case 'tempfail':
      return `${REPLY.tempFail} [session ${sessionId}]`;
    case 'disabled':
      return outcome.reason !== undefined ? `-ERR [AUTH] ${safeText(outcome.reason)}` : REPLY.disabled;
    case 'referral':
      // POP3 has no login referrals: a user sent elsewhere with nologin cannot log in here.
      return outcome.nologin ? REPLY.disabled : REPLY.unavailable;
    case 'no-route':
      return REPLY.unavailable;
    case 'userip-limit':
      return `-ERR [SYS/TEMP] ${userIpText(outcome.max)}`;
  }
}

/** The reply for a proxied login that failed. */
export function proxyFailureReply(f: ProxyFailure): string {
  switch (f.kind) {
    case 'auth-failed':
      return REPLY.authFailed;
    case 'auth-replied':
      return f.relay ?? REPLY.authFailed;
    case 'remote-tempfail':
    case 'config':
    case 'loop':
    case 'connect':
    case 'timeout':
    case 'tls':
    case 'remote':
    case 'protocol':
    case 'host-down':
      return REPLY.unavailable;
  }
}
