/** Which server mechanisms exist, which to advertise, and how to start one. */
import { CramMd5Server } from './cram-md5.js';
import { ExternalServer, LoginServer, PlainServer } from './server.js';
import type { SaslServerContext, SaslServerMech } from './types.js';

interface MechEntry {
  /** Sends the password in the clear: hidden unless plaintext auth is allowed (TLS or trusted). */
  readonly plaintext: boolean;
  readonly create: (ctx: SaslServerContext) => SaslServerMech | undefined;
}

const MECHANISMS = new Map<string, MechEntry>([
  ['PLAIN', { plaintext: true, create: () => new PlainServer() }],
  ['LOGIN', { plaintext: true, create: () => new LoginServer() }],
  ['CRAM-MD5', { plaintext: false, create: (ctx) => new CramMd5Server(ctx.hostname) }],
  [
    'EXTERNAL',
    { plaintext: false, create: (ctx) => (ctx.tlsClientCertUser === undefined ? undefined : new ExternalServer(ctx.tlsClientCertUser)) },
  ],
]);

/** Every server mechanism portier implements, in its default preference order. */
export const SERVER_MECHANISMS: readonly string[] = [...MECHANISMS.keys()];

export function isServerMech(name: string): boolean {
  return MECHANISMS.has(name.toUpperCase());
}

export function isPlaintextMech(name: string): boolean {
  return MECHANISMS.get(name.toUpperCase())?.plaintext ?? false;
}

export interface MechListOptions {
  /** False before TLS on an untrusted connection (disable_plaintext_auth): PLAIN/LOGIN are dropped. */
  readonly plaintextAllowed: boolean;
  /** Configured mechanisms in advertising order; unknown names are ignored. Default PLAIN, LOGIN. */
  readonly enabled?: readonly string[];
  /** EXTERNAL is listed only when the client presented a usable certificate. */
  readonly clientCert?: boolean;
}

/** The mechanism names to advertise (IMAP `AUTH=`, POP3 `SASL`), upper-case, without duplicates. */
export function listServerMechs(opts: MechListOptions): string[] {
  const out: string[] = [];
  for (const raw of opts.enabled ?? ['PLAIN', 'LOGIN']) {
    const name = raw.toUpperCase();
    const entry = MECHANISMS.get(name);
    if (entry === undefined || out.includes(name)) continue;
    if (entry.plaintext && !opts.plaintextAllowed) continue;
    if (name === 'EXTERNAL' && opts.clientCert !== true) continue;
    out.push(name);
  }
  return out;
}

/**
 * A fresh mechanism for one AUTHENTICATE/AUTH exchange (case-insensitive name). Undefined when the
 * name is unknown or the mechanism is unavailable here (EXTERNAL without a client certificate).
 * Whether plaintext is allowed is the caller's check, via `mech.plaintext`.
 */
export function createServerMech(name: string, ctx: SaslServerContext): SaslServerMech | undefined {
  return MECHANISMS.get(name.toUpperCase())?.create(ctx);
}
