/**
 * Client mechanisms for portier's logins to backends (including master-user logins, where
 * authzid is the user and authcid the master). Input that would break the framing is refused
 * up front: a NUL inside authcid would let it smuggle a different authzid into PLAIN.
 */
import { SaslClientError, type SaslClientMech } from './types.js';

export interface SaslClientCredentials {
  /** The identity to act as; '' or absent for none. PLAIN only. */
  readonly authzid?: string;
  readonly authcid: string;
  readonly password: Buffer;
}

function check(creds: SaslClientCredentials, allowAuthzid: boolean): void {
  const authzid = creds.authzid ?? '';
  if (creds.authcid === '') throw new SaslClientError('SASL_CLIENT_INPUT', 'empty authcid');
  if (!allowAuthzid && authzid !== '') throw new SaslClientError('SASL_CLIENT_INPUT', 'LOGIN cannot carry an authzid');
  if (authzid.includes('\0') || creds.authcid.includes('\0') || creds.password.includes(0)) {
    throw new SaslClientError('SASL_CLIENT_INPUT', 'NUL in SASL credentials');
  }
}

/** RFC 4616: the whole message as initial response, or after the server's empty challenge. */
class PlainClient implements SaslClientMech {
  readonly name = 'PLAIN';
  readonly #message: Buffer;
  #answered = false;

  constructor(creds: SaslClientCredentials) {
    check(creds, true);
    const { authzid = '', authcid, password } = creds;
    this.#message = Buffer.concat([Buffer.from(`${authzid}\0${authcid}\0`, 'utf8'), password]);
  }

  start(): Buffer {
    return Buffer.from(this.#message);
  }

  step(challenge: Buffer): Buffer {
    if (this.#answered || challenge.length > 0) {
      throw new SaslClientError('SASL_CLIENT_PROTOCOL', 'unexpected PLAIN challenge');
    }
    this.#answered = true;
    return Buffer.from(this.#message);
  }
}

/** User name on the first challenge, password on the second; the challenge text is not interpreted. */
class LoginClient implements SaslClientMech {
  readonly name = 'LOGIN';
  readonly #answers: Buffer[];

  constructor(creds: SaslClientCredentials) {
    check(creds, false);
    this.#answers = [Buffer.from(creds.authcid, 'utf8'), Buffer.from(creds.password)];
  }

  start(): null {
    return null;
  }

  step(): Buffer {
    const next = this.#answers.shift();
    if (next === undefined) throw new SaslClientError('SASL_CLIENT_PROTOCOL', 'unexpected third LOGIN challenge');
    return next;
  }
}

export const CLIENT_MECHANISMS = ['PLAIN', 'LOGIN'] as const;
export type ClientMechName = (typeof CLIENT_MECHANISMS)[number];

/** Throws SaslClientError SASL_CLIENT_INPUT for credentials the mechanism cannot carry. */
export function createClientMech(name: ClientMechName, creds: SaslClientCredentials): SaslClientMech {
  return name === 'PLAIN' ? new PlainClient(creds) : new LoginClient(creds);
}
