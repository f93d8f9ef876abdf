/**
 * Every reply an LMTP client can get from portier itself, in one table (RFC 5321 §4.2.2 codes,
 * RFC 3463 enhanced codes, Dovecot's texts where Dovecot has one). Backend replies to RCPT and
 * DATA are relayed by code, enhanced code and a cleaned text (see `relayReply`).
 * docs/lmtp.md lists them with the reason each is sent.
 */
import type { ProxyFailure } from '../backend/failure.js';
import { safeText } from '../login/flow.js';
import type { SmtpReply } from './wire.js';

export const REPLY = {
  ok: '250 2.0.0 OK',
  mailOk: '250 2.1.0 OK',
  rcptOk: '250 2.1.5 OK',
  dataGo: '354 OK',
  vrfy: '252 2.3.3 Try RCPT instead',
  bye: '221 2.0.0 Bye',
  beginTls: '220 2.0.0 Begin TLS negotiation now.',
  unknownCommand: '500 5.5.1 Unknown command',
  syntax: '500 5.5.2 Invalid command syntax',
  noArgs: '501 5.5.4 This command takes no parameters',
  lhloSyntax: '501 5.5.4 Invalid domain name',
  lhloFirst: '503 5.5.1 LHLO needed first',
  mailFirst: '503 5.5.1 MAIL needed first',
  mailGiven: '503 5.5.1 MAIL already given',
  noRecipients: '503 5.5.1 No valid recipients',
  inTransaction: '503 5.5.1 Mail transaction in progress',
  unsupportedParams: '555 5.5.4 Unsupported parameters',
  unsupportedBody: '555 5.5.4 Unsupported mail BODY type',
  tooManyRecipients: '452 4.5.3 Too many recipients',
  sizeExceeded: '552 5.3.4 Message size exceeds fixed maximum message size',
  tooBig: '552 5.3.4 Message too big for system',
  noTls: '502 5.5.1 TLS support is not enabled.',
  alreadyTls: '503 5.5.1 TLS is already active.',
  notTrusted: '550 5.7.14 You are not from trusted IP',
  xclientSyntax: '501 5.5.4 Invalid XCLIENT parameters',
  userUnknown: (address: string) => `550 5.1.1 <${address}> User doesn't exist`,
  lookupTempfail: '451 4.3.0 Temporary user lookup failure',
  internal: '451 4.3.0 Internal error occurred. Refer to server log for more information.',
  loopSelf: '554 5.4.6 Proxying loops to itself',
  loopTtl: '554 5.4.6 Proxying appears to be looping (TTL=0)',
  saved: (address: string, id: string) => `250 2.0.0 <${address}> ${id} Saved`,
} as const;

/** The reply for a backend that could not be used (Dovecot's "Remote server not answering"). */
export function backendFailureReply(f: ProxyFailure): string {
  switch (f.kind) {
    case 'connect':
      return '451 4.4.0 Remote server not answering (connect)';
    case 'host-down':
      return '451 4.4.0 Remote server not answering (host is down)';
    case 'timeout':
      return '451 4.4.0 Remote server not answering (timed out)';
    case 'remote':
      return '451 4.4.0 Remote server not answering (connection lost)';
    case 'protocol':
      return '451 4.4.0 Remote server not answering (bad reply)';
    case 'tls':
      return '451 4.4.0 Remote server not answering (TLS)';
    case 'loop':
      return f.detail.startsWith('TTL') ? REPLY.loopTtl : REPLY.loopSelf;
    case 'config':
    case 'auth-failed':
    case 'auth-replied':
    case 'remote-tempfail':
      return REPLY.internal;
  }
}

/**
 * A backend's refusal relayed to the client: its code, its enhanced code (or `x.0.0`), and its
 * text as one printable, bounded line. The MTA needs the real reason to bounce or retry; a
 * backend's LMTP text names the recipient and the problem (quota, unknown user), no secrets.
 */
export function relayReply(r: SmtpReply): string {
  // The backend closing its connection says nothing about the client's: not a 421 to the client.
  if (r.code === 421) return backendFailureReply({ kind: 'remote', detail: 'backend sent 421' });
  const enhanced = r.enhanced ?? `${Math.floor(r.code / 100)}.0.0`;
  const text = safeText(r.lines.join(' '), r.code >= 500 ? 'Delivery failed' : 'Delivery temporarily failed');
  return `${r.code} ${enhanced} ${text}`;
}

/** A backend's positive RCPT reply as ours (its enhanced code, when it gave one). */
export function rcptAccepted(r: SmtpReply): string {
  return `250 ${r.enhanced ?? '2.1.5'} OK`;
}
