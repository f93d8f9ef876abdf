/**
 * Server mechanisms PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and EXTERNAL
 * (RFC 4422 App. A) on a shared step machine that enforces order and the response size limit.
 */
import { isUtf8 } from 'node:buffer';
import { MAX_SASL_RESPONSE_BYTES, type SaslServerMech, type SaslStep } from './types.js';

export const fail = (reason: 'malformed' | 'protocol'): SaslStep => ({ kind: 'fail', reason });
export const challenge = (data: Buffer): SaslStep => ({ kind: 'challenge', data });

/** A UTF-8 identity without NUL; null otherwise (or when empty and that is not allowed). */
export function identity(buf: Buffer, allowEmpty: boolean): string | null {
  if ((!allowEmpty && buf.length === 0) || buf.includes(0) || !isUtf8(buf)) return null;
  return buf.toString('utf8');
}

/** start() once, then step() while challenges go out; after done/fail every call is a protocol failure. */
export abstract class StepMachine implements SaslServerMech {
  abstract readonly name: string;
  abstract readonly plaintext: boolean;
  #state: 'new' | 'running' | 'ended' = 'new';

  start(initial: Buffer | null): SaslStep {
    if (this.#state !== 'new') return this.#end(fail('protocol'));
    this.#state = 'running';
    if (initial !== null && initial.length > MAX_SASL_RESPONSE_BYTES) return this.#end(fail('malformed'));
    return this.#track(this.onStart(initial));
  }

  step(response: Buffer): SaslStep {
    if (this.#state !== 'running') return this.#end(fail('protocol'));
    if (response.length > MAX_SASL_RESPONSE_BYTES) return this.#end(fail('malformed'));
    return this.#track(this.onStep(response));
  }

  protected abstract onStart(initial: Buffer | null): SaslStep;
  protected abstract onStep(response: Buffer): SaslStep;

  #track(step: SaslStep): SaslStep {
    if (step.kind !== 'challenge') this.#state = 'ended';
    return step;
  }

  #end(step: SaslStep): SaslStep {
    this.#state = 'ended';
    return step;
  }
}

/** `[authzid] NUL authcid NUL passwd`: exactly two NULs, authcid and passwd non-empty (RFC 4616 §2). */
export class PlainServer extends StepMachine {
  readonly name = 'PLAIN';
  readonly plaintext = true;

  protected onStart(initial: Buffer | null): SaslStep {
    return initial === null ? challenge(Buffer.alloc(0)) : this.onStep(initial);
  }

  protected onStep(message: Buffer): SaslStep {
    const first = message.indexOf(0);
    const second = first < 0 ? -1 : message.indexOf(0, first + 1);
    if (second < 0 || message.indexOf(0, second + 1) >= 0) return fail('malformed');
    const authzid = identity(message.subarray(0, first), true);
    const authcid = identity(message.subarray(first + 1, second), false);
    const password = Buffer.from(message.subarray(second + 1));
    if (authzid === null || authcid === null || password.length === 0) return fail('malformed');
    return { kind: 'done', credentials: { type: 'password', authzid, authcid, password } };
  }
}

/**
 * `Username:` then `Password:` challenges. Like Dovecot, a non-empty initial response is taken
 * as the user name. The password is kept as bytes; only the user name must be UTF-8.
 */
export class LoginServer extends StepMachine {
  readonly name = 'LOGIN';
  readonly plaintext = true;
  #user: string | undefined;

  protected onStart(initial: Buffer | null): SaslStep {
    return initial === null || initial.length === 0 ? challenge(Buffer.from('Username:')) : this.onStep(initial);
  }

  protected onStep(response: Buffer): SaslStep {
    if (this.#user === undefined) {
      const user = identity(response, false);
      if (user === null) return fail('malformed');
      this.#user = user;
      return challenge(Buffer.from('Password:'));
    }
    return {
      kind: 'done',
      credentials: { type: 'password', authzid: '', authcid: this.#user, password: Buffer.from(response) },
    };
  }
}

/** The client may name an authzid (empty: act as the certificate's user); identity comes from TLS. */
export class ExternalServer extends StepMachine {
  readonly name = 'EXTERNAL';
  readonly plaintext = false;
  readonly #certUser: string;

  constructor(certUser: string) {
    super();
    this.#certUser = certUser;
  }

  protected onStart(initial: Buffer | null): SaslStep {
    return initial === null ? challenge(Buffer.alloc(0)) : this.onStep(initial);
  }

  protected onStep(response: Buffer): SaslStep {
    const authzid = identity(response, true);
    if (authzid === null) return fail('malformed');
    return { kind: 'done', credentials: { type: 'external', authzid, authcid: this.#certUser } };
  }
}
