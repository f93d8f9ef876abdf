/**
 * Pre-login capabilities (RFC 9051 §7.2.2): what portier itself can do before login, plus
 * STARTTLS / LOGINDISABLED / AUTH= according to the connection's TLS state and policy.
 * Post-login capabilities are the backend's own and are relayed from it.
 */
import type { ClientSession } from '../login/session.js';

/** Dovecot 2.3's pre-login list, which clients already know from Dovecot proxies. */
export const BASE_CAPABILITIES = ['IMAP4rev1', 'SASL-IR', 'LOGIN-REFERRALS', 'ID', 'ENABLE', 'IDLE', 'LITERAL+'];

export interface AuthPolicy {
  /** Plaintext mechanisms (LOGIN command, PLAIN, LOGIN) may be used now. */
  readonly plaintextAllowed: boolean;
  /** ssl = required and the connection is not TLS: no authentication at all yet. */
  readonly tlsRequired: boolean;
}

export function authPolicy(session: ClientSession): AuthPolicy {
  const c = session.runtime.config;
  // Dovecot exempts secured connections (trusted networks, the host itself) from ssl = required too.
  const tlsRequired = c.ssl === 'required' && !session.secured;
  return { tlsRequired, plaintextAllowed: !tlsRequired && (!c.disable_plaintext_auth || session.secured) };
}

export function starttlsOffered(session: ClientSession): boolean {
  return !session.tls && session.runtime.config.ssl !== 'no' && session.runtime.tls.enabled;
}

export function preLoginCapabilities(session: ClientSession, mechanisms: readonly { name: string; plaintext: boolean }[]): string {
  const c = session.runtime.config;
  const caps = c.imap_capability !== undefined ? customBase(c.imap_capability) : [...BASE_CAPABILITIES];
  if (starttlsOffered(session)) caps.push('STARTTLS');
  const policy = authPolicy(session);
  if (!policy.plaintextAllowed) caps.push('LOGINDISABLED');
  if (!policy.tlsRequired) {
    for (const m of mechanisms) if (!m.plaintext || policy.plaintextAllowed) caps.push(`AUTH=${m.name}`);
  }
  return caps.join(' ');
}

/** `imap_capability`: a full list, or `+EXTRA ...` to append to the default (Dovecot 2.3). */
function customBase(setting: string): string[] {
  const words = setting.trim().split(/\s+/).filter((w) => w !== '');
  if (words[0]?.startsWith('+')) return [...BASE_CAPABILITIES, words[0].slice(1), ...words.slice(1)].filter((w) => w !== '');
  return words;
}
