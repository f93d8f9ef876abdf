/** Shared shapes of the scheme implementations (internal to src/passdb/schemes). */

export type VerifyResult =
  | 'ok'
  | 'mismatch'
  /** `unknown-scheme`: not a scheme portier implements; `malformed`: the stored value cannot be read. */
  | { readonly error: 'unknown-scheme' | 'malformed'; readonly scheme: string };

/** What one scheme says; the dispatcher turns the last two into VerifyResult errors. */
export type Outcome = 'ok' | 'mismatch' | 'malformed' | { readonly unsupported: string };

/** How a stored value is written; suffixes `.HEX`, `.B64`/`.BASE64` on the scheme name override it. */
export type Encoding = 'none' | 'hex' | 'base64';

export interface VerifyContext {
  readonly user: string;
  readonly signal: AbortSignal | undefined;
}

export interface GenerateOptions {
  readonly rounds: number | undefined;
  readonly user: string | undefined;
}

export interface SchemeImpl {
  /** Encoding of the stored value when the scheme name carries no suffix. */
  readonly encoding: Encoding;
  /** Decoded length of fixed-size digests (lets hex vs base64 be guessed, as Dovecot does); 0 = variable. */
  readonly rawLength: number;
  /** `raw` is the stored value after decoding (UTF-8 bytes of it for encoding `none`). */
  verify(raw: Buffer, password: Buffer, ctx: VerifyContext): Outcome | Promise<Outcome>;
  /** The raw stored value (before encoding) for a new password; absent: cannot generate. */
  generate?(password: Buffer, opts: GenerateOptions): Buffer | Promise<Buffer>;
}
