/**
 * The protocol-neutral login decision: credentials in, an `AuthOutcome` out. Front-ends map
 * each outcome kind to their wire reply (one table per protocol); nothing here writes to a
 * client. Failures that reveal nothing (unknown user, wrong password, bad name) are one kind.
 */
import { BlockList } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { netBlockList } from '../config/types.js';
import { flag, parseLoginFields, type LoginFields, type ProxyTarget } from '../passdb/fields.js';
import { credentialsFor } from '../passdb/schemes/index.js';
import type { AuthRequest, PassdbResult, StoredCredentials } from '../passdb/types.js';
import { verifyCramMd5, type CramMd5Credentials, type SaslCredentials } from '../sasl/index.js';
import { expandTemplate } from '../passdb/vars.js';
import { publishAuth } from '../telemetry/events.js';
import { familyOf, type ClientSession } from './session.js';

export interface LoginCredentials {
  /** LOGIN (IMAP command), USER (POP3), or the SASL mechanism name. */
  readonly mech: string;
  /** The name the client authenticated as (may be `user*master`). */
  readonly authcid: string;
  /** SASL authorization identity, when the client asked to act as someone else. */
  readonly authzid?: string | undefined;
  readonly password: Buffer;
  /**
   * Challenge-response mechanisms (CRAM-MD5): no password was sent (`password` is empty); the
   * response is checked against the passdb's stored credentials.
   */
  readonly challenge?: { verify(stored: StoredCredentials): boolean } | undefined;
  /** EXTERNAL: the identity (authcid) was proven by a verified TLS client certificate. */
  readonly external?: boolean | undefined;
}

/**
 * A finished SASL exchange as login credentials, for every front-end alike; null for a
 * mechanism whose result portier cannot log in with (the caller answers "unsupported").
 */
export function saslLogin(mech: string, c: SaslCredentials): LoginCredentials | null {
  if (c.type === 'cram-md5') return cramMd5Login(c);
  if (c.type === 'password') return { mech, authcid: c.authcid, authzid: c.authzid, password: c.password };
  return { mech: 'EXTERNAL', authcid: c.authcid, authzid: c.authzid, password: Buffer.alloc(0), external: true };
}

/** The login core's view of a finished CRAM-MD5 exchange (RFC 2195). */
export function cramMd5Login(c: CramMd5Credentials): LoginCredentials {
  return {
    mech: 'CRAM-MD5',
    authcid: c.authcid,
    password: Buffer.alloc(0),
    challenge: {
      verify(stored) {
        const context = credentialsFor(stored.stored, stored.scheme, 'CRAM-MD5');
        return context !== null && verifyCramMd5(c, { context });
      },
    },
  };
}

export type AuthOutcome =
  | {
      readonly kind: 'proxy';
      readonly user: string;
      readonly target: ProxyTarget;
      /** Password for the backend login: the passdb's `pass`, else what the client typed. */
      readonly password: Buffer;
      /** Set for master logins: upstream logs in as this master on the user's behalf. */
      readonly masterUser?: string | undefined;
      readonly fields: LoginFields;
      /** `host` without `proxy`: logged in (at local_backend), but told to use this server. */
      readonly referral?: { readonly host: string; readonly port?: number | undefined } | undefined;
    }
  | { readonly kind: 'referral'; readonly user: string; readonly host: string; readonly port?: number | undefined; readonly nologin: boolean; readonly destuser?: string | undefined }
  /** `nodelay` (a passdb field): answer without auth_failure_delay; the penalty still counts. */
  | { readonly kind: 'failed'; readonly why: string; readonly nodelay?: boolean; readonly noPenalty?: boolean }
  | { readonly kind: 'tempfail'; readonly why: string }
  | { readonly kind: 'disabled'; readonly reason?: string | undefined }
  | { readonly kind: 'no-route'; readonly user: string }
  /** mail_max_userip_connections: this user already has `max` proxied sessions from this address. */
  | { readonly kind: 'userip-limit'; readonly user: string; readonly max: number };

/** Dovecot caps user names; longer ones are refused before any lookup. */
export const MAX_USERNAME_LENGTH = 255;

export async function authenticate(session: ClientSession, creds: LoginCredentials): Promise<AuthOutcome> {
  // Dovecot's auth penalty: a penalised client waits BEFORE the lookup, right password or not.
  const penalty = session.trusted || !session.runtime.penalty.enabled ? undefined : session.runtime.penalty;
  const seen = penalty === undefined ? undefined : await penalty.lookup(session.peer.remoteIp);
  if (seen !== undefined && seen.delayMs > 0) {
    session.log.info({ rip: session.peer.remoteIp, penalty: seen.penalty, delay_ms: seen.delayMs }, 'auth penalty: delaying this login');
    await sleep(seen.delayMs);
    if (session.ended) return { kind: 'failed', why: 'client gone during the penalty delay', nodelay: true, noPenalty: true };
  }
  const outcome = await decide(session, creds);
  if (penalty !== undefined && seen !== undefined) {
    if (outcome.kind === 'failed' && outcome.noPenalty !== true) {
      await penalty.failed(seen, session.user ?? creds.authcid, creds.challenge === undefined ? creds.password : undefined);
    } else if (outcome.kind === 'proxy') {
      await penalty.succeeded(seen);
    }
  }
  publishAuth({ protocol: session.listener.protocol, result: outcome.kind });
  if ((outcome.kind === 'failed' && outcome.nodelay !== true) || outcome.kind === 'disabled') {
    const delay = session.runtime.config.auth_failure_delay;
    if (delay > 0 && !session.trusted) await sleep(delay);
  }
  return outcome;
}

async function decide(session: ClientSession, creds: LoginCredentials): Promise<AuthOutcome> {
  const { config, passdbs } = session.runtime;
  if (creds.external === true) return decideExternal(session, creds);
  let login = creds.authcid;
  let master: string | undefined;
  const sep = config.auth_master_user_separator;
  if (creds.authzid !== undefined && creds.authzid !== '' && creds.authzid !== creds.authcid) {
    master = creds.authcid;
    login = creds.authzid;
  } else if (sep !== '' && login.includes(sep)) {
    const at = login.lastIndexOf(sep);
    master = login.slice(at + 1);
    login = login.slice(0, at);
  }
  const user = normalizeUser(login, config.auth_username_format, config.auth_username_chars);
  if (user === null) return { kind: 'failed', why: 'invalid user name' };
  session.user = user;
  const password: Buffer = creds.password;
  if (master !== undefined) {
    const masterName = normalizeUser(master, config.auth_username_format, config.auth_username_chars);
    if (masterName === null) return { kind: 'failed', why: 'invalid master user name' };
    if (!passdbs.hasMasterPassdbs) return { kind: 'failed', why: `master login as ${masterName} but no master passdb` };
    if (creds.challenge !== undefined) return decideChallenge(session, creds, requestBase(session, creds.mech, login), user, masterName);
    const m = await passdbs.authenticateMaster(authRequest(session, creds.mech, login, masterName, creds.password));
    if (m.kind === 'tempfail') return { kind: 'tempfail', why: m.reason };
    if (m.kind !== 'ok') return { kind: 'failed', why: `master user ${masterName}: ${m.kind === 'mismatch' ? 'wrong password' : 'not a master user'}` };
    const target = await passdbs.authenticate(authRequest(session, creds.mech, login, user, undefined, masterName));
    if (target.kind === 'tempfail') return { kind: 'tempfail', why: target.reason };
    if (target.kind !== 'ok') return { kind: 'failed', why: `master login for unknown user ${user}` };
    return route(session, target.user, target.fields, password, masterName);
  }

  if (creds.challenge !== undefined) return decideChallenge(session, creds, requestBase(session, creds.mech, login), user, undefined);
  const result = await passdbs.authenticate(authRequest(session, creds.mech, login, user, password));
  if (result.kind === 'tempfail') return { kind: 'tempfail', why: result.reason };
  if (result.kind === 'unknown') return { kind: 'failed', why: 'unknown user' };
  if (result.kind === 'mismatch') {
    return { kind: 'failed', why: `password mismatch (${result.passdb})`, nodelay: flag(result.fields, 'nodelay') };
  }
  return route(session, result.user, result.fields, password, undefined);
}

/**
 * CRAM-MD5 and friends: look up the stored credentials (no verification by the passdb), check
 * the response, then route. The backend needs a password the client never sent: the passdb's
 * `pass` (or a master login), or the cleartext when the store keeps PLAIN; otherwise the login
 * cannot be proxied and fails temporarily with the reason in the log.
 */
async function decideChallenge(
  session: ClientSession,
  creds: LoginCredentials,
  base: Omit<AuthRequest, 'user'>,
  user: string,
  masterName: string | undefined,
): Promise<AuthOutcome> {
  const { passdbs } = session.runtime;
  const who = masterName ?? user;
  const looked: PassdbResult = await passdbs.lookupCredentials({ ...base, user: who, masterUser: undefined }, masterName !== undefined);
  if (looked.kind === 'tempfail') return { kind: 'tempfail', why: looked.reason };
  if (looked.kind !== 'ok') return { kind: 'failed', why: masterName === undefined ? 'unknown user' : `${masterName} is not a master user` };
  if (looked.credentials === undefined) {
    return { kind: 'failed', why: `${creds.mech}: the passdb has no stored password for ${who} (nopassword or a verify-only driver)` };
  }
  if (creds.challenge?.verify(looked.credentials) !== true) {
    return { kind: 'failed', why: `${creds.mech}: wrong response (or the stored scheme cannot answer ${creds.mech})`, nodelay: flag(looked.fields, 'nodelay') };
  }
  const cleartext = credentialsFor(looked.credentials.stored, looked.credentials.scheme, 'PLAIN') ?? Buffer.alloc(0);
  let outcome: AuthOutcome;
  if (masterName !== undefined) {
    const target = await passdbs.authenticate({ ...base, user, masterUser: masterName, password: undefined });
    if (target.kind === 'tempfail') return { kind: 'tempfail', why: target.reason };
    if (target.kind !== 'ok') return { kind: 'failed', why: `master login for unknown user ${user}` };
    outcome = route(session, target.user, target.fields, cleartext, masterName);
  } else {
    outcome = route(session, looked.user, looked.fields, cleartext, undefined);
  }
  if (outcome.kind === 'proxy' && outcome.password.length === 0) {
    session.log.error({ user: outcome.user, mech: creds.mech }, 'cannot proxy this login: the client sent no password and the passdb gives none for the backend (set pass, or master and pass, or store the password as PLAIN)');
    return { kind: 'tempfail', why: `${creds.mech} login without a backend password` };
  }
  return outcome;
}

/**
 * EXTERNAL (RFC 4422 App. A): the certificate names the user, so the passdbs are asked for the
 * user's fields only (no password). An authorization id other than that user is refused; the
 * backend password must come from the passdb (`pass`, or `master` + `pass`).
 */
async function decideExternal(session: ClientSession, creds: LoginCredentials): Promise<AuthOutcome> {
  const { config, passdbs } = session.runtime;
  if (creds.authzid !== undefined && creds.authzid !== '' && creds.authzid !== creds.authcid) {
    return { kind: 'failed', why: `EXTERNAL: authorization id ${creds.authzid} is not the certificate's user ${creds.authcid}` };
  }
  const user = normalizeUser(creds.authcid, config.auth_username_format, config.auth_username_chars);
  if (user === null) return { kind: 'failed', why: 'invalid user name in the client certificate' };
  session.user = user;
  const found = await passdbs.authenticate(authRequest(session, creds.mech, creds.authcid, user, undefined));
  if (found.kind === 'tempfail') return { kind: 'tempfail', why: found.reason };
  if (found.kind !== 'ok') return { kind: 'failed', why: `EXTERNAL: ${found.kind === 'unknown' ? 'unknown user' : 'refused by the passdb'} ${user}` };
  const outcome = route(session, found.user, found.fields, Buffer.alloc(0), undefined);
  if (outcome.kind === 'proxy' && outcome.password.length === 0) {
    session.log.error({ user: outcome.user, mech: 'EXTERNAL' }, 'cannot proxy this login: the client sent no password and the passdb gives none for the backend (set pass, or master and pass)');
    return { kind: 'tempfail', why: 'EXTERNAL login without a backend password' };
  }
  return outcome;
}

function route(
  session: ClientSession,
  user: string,
  raw: ReadonlyMap<string, string>,
  typed: Buffer,
  masterUser: string | undefined,
): AuthOutcome {
  session.user = user;
  const parsed = parseLoginFields(raw, session.listener.protocol);
  if (!parsed.ok) {
    session.log.error({ user, problem: parsed.error }, 'passdb returned invalid fields');
    return { kind: 'tempfail', why: `invalid passdb fields: ${parsed.error}` };
  }
  const fields = parsed.fields;
  if (fields.unknown.length > 0) session.log.debug({ user, fields: fields.unknown }, 'passdb returned fields portier does not use');
  if (fields.allowNets && !inNets(fields.allowNets, session.peer.remoteIp)) {
    return { kind: 'failed', why: `allow_nets does not include ${session.peer.remoteIp}` };
  }
  if (fields.allowRealNets && !inNets(fields.allowRealNets, session.peer.realRemoteIp)) {
    return { kind: 'failed', why: `allow_real_nets does not include ${session.peer.realRemoteIp}` };
  }
  if (fields.proxy === undefined) {
    const local = session.runtime.localBackends[session.listener.protocol];
    if (fields.referralHost !== undefined && !fields.nologin && local !== undefined) {
      // Dovecot logs such users in locally and adds the referral: portier's "locally" is local_backend.
      const target: ProxyTarget = {
        mode: 'proxy', always: false, host: local.host, port: local.port, destuser: fields.destuser,
        tls: 'none', anyCert: false, nopipelining: false, notTrusted: false, forward: new Map(),
      };
      return { kind: 'proxy', user, target, password: typed, masterUser, fields, referral: { host: fields.referralHost, port: fields.referralPort } };
    }
    if (fields.referralHost !== undefined) {
      return { kind: 'referral', user, host: fields.referralHost, port: fields.referralPort, nologin: fields.nologin, destuser: fields.destuser };
    }
    if (fields.nologin) return { kind: 'disabled', reason: fields.reason };
    return { kind: 'no-route', user };
  }
  if (fields.nologin) return { kind: 'disabled', reason: fields.reason };
  const target = fields.proxy;
  return {
    kind: 'proxy',
    user,
    target,
    password: target.pass ?? typed,
    masterUser: target.master ?? masterUser,
    fields,
  };
}

/**
 * The passdb request for this session, for logins and LMTP recipients alike, built in one literal: spreading a base object and adding
 * `user` and `password` made a second 17-field object per login, and V8 kept it in dictionary
 * mode (every later field read a hash lookup).
 */
export function authRequest(session: ClientSession, mech: string, origUser: string, user: string, password: Buffer | undefined, masterUser?: string): AuthRequest {
  const p = session.peer;
  return {
    protocol: session.listener.protocol,
    user,
    origUser,
    password,
    mech,
    masterUser,
    sessionId: session.id,
    remoteIp: p.remoteIp,
    remotePort: p.remotePort,
    localIp: p.localIp,
    localPort: p.localPort,
    realRemoteIp: p.realRemoteIp,
    realLocalIp: p.realLocalIp,
    localName: session.localName,
    secured: session.secured,
  };
}

/** The request without its user, for challenge logins, which ask the passdbs for more than one user. */
export function requestBase(session: ClientSession, mech: string, origUser: string): Omit<AuthRequest, 'user'> {
  return authRequest(session, mech, origUser, '', undefined);
}

/** auth_username_format then auth_username_chars; null when the name is not acceptable. */
export function normalizeUser(name: string, format: string, allowed: string): string | null {
  if (name === '' || name.length > MAX_USERNAME_LENGTH) return null;
  if (allowed !== '') {
    if (!allowedChars(allowed).test(name)) return null;
  } else if (/[\x00-\x1f\x7f]/.test(name)) {
    return null;
  }
  const { username, domain } = splitAt(name);
  return expandTemplate(format, { user: name, username, domain });
}

let charsFor = '';
let charsRe = /^$/u;

/** auth_username_chars as one anchored character class (one config value: the last one is kept). */
function allowedChars(allowed: string): RegExp {
  if (allowed !== charsFor) {
    const escaped = [...allowed].map((ch) => (/[\\\]\[^-]/.test(ch) ? `\\${ch}` : ch)).join('');
    charsRe = new RegExp(`^[${escaped}]*$`, 'u');
    charsFor = allowed;
  }
  return charsRe;
}

function splitAt(name: string): { username: string; domain: string } {
  const at = name.lastIndexOf('@');
  return at < 0 ? { username: name, domain: '' } : { username: name.slice(0, at), domain: name.slice(at + 1) };
}

function inNets(nets: readonly string[], ip: string): boolean {
  let list: BlockList;
  try {
    list = netBlockList(nets);
  } catch {
    return false;
  }
  return list.check(ip, familyOf(ip));
}
