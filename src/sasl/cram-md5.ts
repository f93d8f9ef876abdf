/** CRAM-MD5 (RFC 2195): server challenge, response parsing, and the digest check. */
import { randomBytes } from 'node:crypto';
import { cramMd5Context, cramMd5Matches } from '../passdb/schemes/cram-md5.js';
import { challenge, fail, identity, StepMachine } from './server.js';
import type { SaslCredentials, SaslStep } from './types.js';

export type CramMd5Credentials = Extract<SaslCredentials, { type: 'cram-md5' }>;

/** What the passdb gave: a stored HMAC-MD5 context (credentialsFor(..., 'CRAM-MD5')) or a cleartext. */
export type CramMd5Secret = { readonly context: Buffer } | { readonly password: Buffer };

const RESPONSE = /^(.+) ([0-9a-fA-F]{32})$/s;

/** Server-first: any initial response is a protocol error (RFC 2195 §2); `=` counts as none. */
export class CramMd5Server extends StepMachine {
  readonly name = 'CRAM-MD5';
  readonly plaintext = false;
  readonly #hostname: string;
  #challenge: Buffer | undefined;

  constructor(hostname: string) {
    super();
    this.#hostname = hostname;
  }

  protected onStart(initial: Buffer | null): SaslStep {
    if (initial !== null && initial.length > 0) return fail('protocol');
    const random = randomBytes(8).readBigUInt64BE();
    this.#challenge = Buffer.from(`<${random}.${Math.floor(Date.now() / 1000)}@${this.#hostname}>`);
    return challenge(this.#challenge);
  }

  /** `user SP 32-hex-digest`; the user name may itself contain spaces, so split at the last one. */
  protected onStep(response: Buffer): SaslStep {
    const user = this.#challenge === undefined ? null : identity(response, false);
    const m = user === null ? null : RESPONSE.exec(user);
    if (this.#challenge === undefined || m === null || m[1] === undefined || m[2] === undefined) return fail('malformed');
    return {
      kind: 'done',
      credentials: { type: 'cram-md5', authcid: m[1], challenge: this.#challenge, response: m[2].toLowerCase() },
    };
  }
}

/** Constant-time check of the client's digest; compares the 16-byte digests, not hex strings. */
export function verifyCramMd5(credentials: CramMd5Credentials, secret: CramMd5Secret): boolean {
  if (!/^[0-9a-fA-F]{32}$/.test(credentials.response)) return false;
  const digest = Buffer.from(credentials.response, 'hex');
  const context = 'context' in secret ? secret.context : cramMd5Context(secret.password);
  return cramMd5Matches(context, credentials.challenge, digest);
}
