/**
 * The passdb interface. Drivers answer "found (with fields)", "unknown user" or "temporary
 * failure"; verifying the password is the chain's job, so every driver gets the same scheme
 * handling. Only infrastructure failures are `tempfail`; no driver throws for a normal answer.
 */
import type { Protocol } from '../config/schema.js';
import type { VarName } from './vars.js';

/** Raw passdb fields as the store holds them (`password`, `proxy`, `host`, ...). */
export type Fields = ReadonlyMap<string, string>;

export interface AuthRequest {
  readonly protocol: Protocol;
  /** The user after username_format; what `%u` expands to. */
  readonly user: string;
  /** The name as the client typed it, for logs and `%{orig_user}`. */
  readonly origUser: string;
  /** Absent for lookups without a password (LMTP RCPT, the target of a master login). */
  readonly password?: Buffer | undefined;
  /** The SASL mechanism or the protocol's plain command (LOGIN, USER/PASS). */
  readonly mech: string;
  readonly masterUser?: string | undefined;
  readonly sessionId: string;
  readonly remoteIp: string;
  readonly remotePort: number;
  readonly localIp: string;
  readonly localPort: number;
  readonly realRemoteIp: string;
  readonly realLocalIp: string;
  readonly localName?: string | undefined;
  readonly secured: boolean;
}

export type PassdbLookup =
  /** The user exists; `fields` includes `password` when the store holds one. */
  | { readonly kind: 'found'; readonly fields: Fields }
  /** Drivers that check the password themselves (checkpassword) say so here. */
  | { readonly kind: 'verified'; readonly ok: boolean; readonly fields: Fields }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'tempfail'; readonly reason: string };

export interface Passdb {
  /** For logs: the configured name or the driver name with its position. */
  readonly name: string;
  readonly driver: string;
  lookup(req: AuthRequest): Promise<PassdbLookup>;
  close?(): Promise<void>;
  /** `%` variables the driver's templates read (beyond the user): part of the auth cache key. */
  readonly templateVars?: ReadonlySet<VarName>;
  /** Scheme for stored passwords without a `{SCHEME}` prefix, when the driver has its own. */
  readonly defaultScheme?: string;
}

/** A stored password as a credentials lookup returns it (CRAM-MD5 needs it, not a verification). */
export interface StoredCredentials {
  readonly stored: string;
  /** The scheme of a value without a prefix (the passdb's default_pass_scheme). */
  readonly scheme: string;
}

/** What the chain decides for one request. */
export type PassdbResult =
  | {
      readonly kind: 'ok';
      readonly user: string;
      readonly fields: Fields;
      readonly passdb: string;
      /** Only from `lookupCredentials`: the stored password of the passdb that found the user. */
      readonly credentials?: StoredCredentials | undefined;
    }
  | { readonly kind: 'mismatch'; readonly passdb: string; readonly fields: Fields }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'tempfail'; readonly reason: string };
