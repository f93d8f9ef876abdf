/**
 * SASL (RFC 4422) mechanisms as step machines over raw bytes. Front-ends own the wire: they
 * base64-decode client lines (decodeSaslBase64), handle `*` cancellation, and encode challenges.
 */

/** Largest decoded client response a server mechanism accepts (Dovecot's SASL buffer is 8 KiB). */
export const MAX_SASL_RESPONSE_BYTES = 8192;

export type SaslCredentials =
  /** PLAIN, LOGIN: authzid is '' when the client asked for none (RFC 4616 §2). */
  | { readonly type: 'password'; readonly authzid: string; readonly authcid: string; readonly password: Buffer }
  /** CRAM-MD5 (RFC 2195): check with verifyCramMd5 against a stored context or cleartext. */
  | { readonly type: 'cram-md5'; readonly authcid: string; readonly challenge: Buffer; readonly response: string }
  /** EXTERNAL (RFC 4422 App. A): authcid is the TLS client certificate user. */
  | { readonly type: 'external'; readonly authzid: string; readonly authcid: string };

export type SaslStep =
  | { readonly kind: 'challenge'; readonly data: Buffer }
  | { readonly kind: 'done'; readonly credentials: SaslCredentials }
  /** `malformed`: the client's data is unusable; `protocol`: a step out of order or an initial response where none is allowed. */
  | { readonly kind: 'fail'; readonly reason: 'malformed' | 'protocol' };

export interface SaslServerMech {
  readonly name: string;
  /** Sends a cleartext password, so it obeys disable_plaintext_auth. */
  readonly plaintext: boolean;
  /** `initial` is the SASL-IR initial response (empty Buffer for `=`), null when none was sent. */
  start(initial: Buffer | null): SaslStep;
  step(response: Buffer): SaslStep;
}

/** Client side, for portier's own logins to backends. step() throws SaslClientError on an unexpected challenge. */
export interface SaslClientMech {
  readonly name: string;
  /** The initial response, or null when the mechanism has none; callers without SASL-IR may drop it. */
  start(): Buffer | null;
  step(challenge: Buffer): Buffer;
}

export interface SaslServerContext {
  /** Put into the CRAM-MD5 challenge (`<random.time@hostname>`). */
  readonly hostname: string;
  /** The user named by a verified TLS client certificate; EXTERNAL is unavailable without one. */
  readonly tlsClientCertUser?: string;
}

export class SaslClientError extends Error {
  readonly code: 'SASL_CLIENT_INPUT' | 'SASL_CLIENT_PROTOCOL';

  constructor(code: SaslClientError['code'], message: string) {
    super(message);
    this.name = 'SaslClientError';
    this.code = code;
  }
}
