/**
 * The pre-login CAPA list (RFC 2449 §5): Dovecot 2.3 pop3-login's, so clients that know a
 * Dovecot proxy see nothing new, with STLS / USER / SASL according to the connection's TLS
 * state and policy. After login the backend answers CAPA itself.
 */
import { authPolicy, starttlsOffered } from '../imap/capability.js';
import type { ClientSession } from '../login/session.js';

/** What Dovecot 2.3.19 pop3-login lists before login, before STLS/USER/SASL. */
export const BASE_CAPABILITIES = ['CAPA', 'TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];

export { authPolicy, starttlsOffered };

/** Mechanisms a client may use now: plaintext ones only when plaintext auth is allowed. */
export function usableMechanisms(session: ClientSession, offered: readonly { name: string; plaintext: boolean }[]): string[] {
  const policy = authPolicy(session);
  if (policy.tlsRequired) return [];
  return offered.filter((m) => !m.plaintext || policy.plaintextAllowed).map((m) => m.name);
}

/** The CAPA lines, without the `+OK` line and the final `.`. */
export function preLoginCapabilities(session: ClientSession, offered: readonly { name: string; plaintext: boolean }[]): string[] {
  const caps = [...BASE_CAPABILITIES];
  if (starttlsOffered(session)) caps.push('STLS');
  if (authPolicy(session).plaintextAllowed) caps.push('USER');
  const mechs = usableMechanisms(session, offered);
  if (mechs.length > 0) caps.push(`SASL ${mechs.join(' ')}`);
  return caps;
}
