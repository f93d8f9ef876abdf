/**
 * User enumeration by timing (ecosystem.md §2.3 item 9, test R15): a login that fails without
 * any password verification (unknown user, no stored password, a deny list) first verifies
 * the offered password against a decoy, so it costs what a wrong password costs. The decoy
 * is the stored value the chain verified last (the real users' scheme and cost), or, before
 * the first, a hash of a random password in the configured default scheme. It lives in
 * memory only, like the passwd-file contents, and is never logged.
 */
import { randomBytes } from 'node:crypto';
import { errorText } from '../errors.js';
import type { Logger } from '../telemetry/log.js';
import { hashPassword, verifyPassword } from './schemes/index.js';

export class DecoyPassword {
  readonly #defaultScheme: string;
  readonly #log: Logger;
  #stored: { readonly value: string; readonly scheme: string } | undefined;
  #generating: Promise<void> | undefined;

  constructor(defaultScheme: string, log: Logger) {
    this.#defaultScheme = defaultScheme;
    this.#log = log;
  }

  /** A real stored password was just verified (ok or mismatch): decoys copy its cost from now on. */
  learn(value: string, scheme: string): void {
    this.#stored = { value, scheme };
  }

  /** Start making the default-scheme decoy while the passdbs are asked (once; no-op after a learn). */
  prepare(): void {
    if (this.#stored !== undefined || this.#generating !== undefined) return;
    this.#generating = hashPassword(this.#defaultScheme, Buffer.from(randomBytes(18).toString('base64')), { user: 'decoy' }).then(
      (value) => {
        this.#stored ??= { value, scheme: this.#defaultScheme };
      },
      (err: unknown) => {
        // A verify-only default scheme (e.g. DIGEST-MD5 needs a realm): such schemes are cheap anyway.
        this.#log.debug({ scheme: this.#defaultScheme, err: errorText(err) }, 'no decoy password for this default_pass_scheme');
      },
    );
  }

  /**
   * Verify `password` against the decoy and forget the answer. Rejects as verifyPassword does
   * for infrastructure trouble (a full hash queue), so an unknown user then fails temporarily
   * exactly as a known one would.
   */
  async spend(password: Buffer, user: string): Promise<void> {
    this.prepare();
    if (this.#stored === undefined) await this.#generating;
    const decoy = this.#stored;
    if (decoy === undefined) return;
    await verifyPassword(decoy.value, password, { defaultScheme: decoy.scheme, user });
  }
}
