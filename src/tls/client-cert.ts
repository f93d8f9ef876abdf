/**
 * TLS client certificates on the client leg (Dovecot's ssl_verify_client_cert, ssl_ca,
 * auth_ssl_require_client_cert, auth_ssl_username_from_cert, ssl_cert_username_field):
 * what the client presented, whether it chains to ssl_ca, and the user name it carries.
 */
import type { TLSSocket } from 'node:tls';
import type { AuthOutcome, LoginCredentials } from '../login/auth.js';
import type { ClientSession } from '../login/session.js';

export interface ClientCertInfo {
  /** The client sent a certificate. */
  readonly presented: boolean;
  /** It chains to ssl_ca (and is not revoked by a CRL there, nor expired). */
  readonly valid: boolean;
  /** OpenSSL's reason when it is not valid (`UNABLE_TO_VERIFY_LEAF_SIGNATURE`, ...). */
  readonly error?: string | undefined;
  /** The subject, one line, for logs. */
  readonly subject?: string | undefined;
  readonly fingerprint256?: string | undefined;
  /** ssl_cert_username_field of the subject, when valid and usable as a user name. */
  readonly username?: string | undefined;
}

/**
 * OpenSSL long names for the subject fields Node reports by short name, so
 * `ssl_cert_username_field` takes either spelling, as Dovecot's OBJ_txt2nid() does.
 */
const LONG_NAMES: Readonly<Record<string, string>> = {
  commonname: 'CN',
  userid: 'UID',
  organizationname: 'O',
  organizationalunitname: 'OU',
  countryname: 'C',
  localityname: 'L',
  stateorprovincename: 'ST',
  surname: 'SN',
  givenname: 'GN',
  domaincomponent: 'DC',
};

/** Longest user name taken from a certificate (Dovecot refuses longer user names too). */
const MAX_CERT_USERNAME = 255;

type Subject = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The first value of the named subject field, or undefined when absent or not a clean name. */
export function usernameFromSubject(subject: Subject, field: string): string | undefined {
  const wanted = (LONG_NAMES[field.toLowerCase()] ?? field).toLowerCase();
  const key = Object.keys(subject).find((k) => k.toLowerCase() === wanted);
  if (key === undefined) return undefined;
  const raw = subject[key];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (typeof value !== 'string' || value === '' || value.length > MAX_CERT_USERNAME) return undefined;
  // A NUL or line break inside a certificate name is an attack on whoever reads it, not a user name.
  if (/[\x00-\x1f\x7f]/.test(value)) return undefined;
  return value;
}

/** Node computes a server socket's verification result only for tls.Server; ask the handle. */
interface VerifyHandle {
  verifyError(): Error | null;
}

function verifyError(socket: TLSSocket): string | undefined {
  const handle = (socket as unknown as { _handle?: Partial<VerifyHandle> | null })._handle;
  // Without the handle (a future Node): fail closed, no certificate counts as valid.
  if (handle?.verifyError === undefined) return 'VERIFY_RESULT_UNAVAILABLE';
  const err = handle.verifyError();
  if (err === null) return undefined;
  return (err as Error & { code?: string }).code ?? err.message;
}

/** What the client presented on a finished server-side handshake that requested a certificate. */
export function clientCertInfo(socket: TLSSocket, usernameField: string): ClientCertInfo {
  const cert = socket.getPeerCertificate();
  if (cert === null || cert === undefined || Object.keys(cert).length === 0 || cert.raw === undefined) {
    return { presented: false, valid: false };
  }
  const error = verifyError(socket);
  const subject = cert.subject as unknown as Subject;
  const subjectLine = Object.entries(subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(', ')
    .replace(/[\x00-\x1f\x7f]/g, '?')
    .slice(0, 300);
  const valid = error === undefined;
  return {
    presented: true,
    valid,
    error,
    subject: subjectLine,
    fingerprint256: cert.fingerprint256,
    username: valid ? usernameFromSubject(subject, usernameField) : undefined,
  };
}

/** The login decision a certificate forces before any passdb is asked. */
export type CertGate = { readonly ok: true; readonly creds: LoginCredentials } | { readonly ok: false; readonly outcome: Extract<AuthOutcome, { kind: 'failed' }> };

/**
 * auth_ssl_require_client_cert: no valid certificate, no login. auth_ssl_username_from_cert:
 * the certificate's name replaces the one the client typed, whatever the mechanism (Dovecot's
 * cert_username rule); EXTERNAL already carries it.
 */
export function clientCertGate(session: ClientSession, creds: LoginCredentials): CertGate {
  const config = session.runtime.config;
  const cert = session.clientCert;
  if (config.auth_ssl_require_client_cert && cert?.valid !== true) {
    const why = cert?.presented === true ? `client certificate not valid (${cert.error ?? 'unknown reason'})` : 'no client certificate (auth_ssl_require_client_cert)';
    return { ok: false, outcome: { kind: 'failed', why } };
  }
  if (config.auth_ssl_username_from_cert && cert?.valid === true && cert.username !== undefined && creds.authcid !== cert.username) {
    return { ok: true, creds: { ...creds, authcid: cert.username } };
  }
  return { ok: true, creds };
}

/** The user name EXTERNAL may use: a valid certificate's, with auth_ssl_username_from_cert (as Dovecot). */
export function externalUser(session: ClientSession): string | undefined {
  const cert = session.clientCert;
  return session.runtime.config.auth_ssl_username_from_cert && cert?.valid === true ? cert.username : undefined;
}
