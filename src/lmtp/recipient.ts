/**
 * Where one RCPT goes (Dovecot's lmtp_proxy_rcpt): the user name from the address (detail
 * stripped, auth_username_format applied), a passdb lookup without a password, the proxy
 * fields (host, hostip, port, protocol, ssl/starttls, proxy_timeout, proxy_not_trusted,
 * source_ip, user/destuser) parsed once, then the shared route decision (self, loop, TTL).
 * Unknown users go to local_backend.lmtp when one is configured, as Dovecot delivers them
 * locally; otherwise they get 550 5.1.1.
 */
import { knownAddresses, resolveHost } from '../backend/connect.js';
import { ProxyFailureError } from '../backend/failure.js';
import { decideRoute } from '../backend/route.js';
import { errorText } from '../errors.js';
import { authRequest, normalizeUser } from '../login/auth.js';
import type { ClientSession } from '../login/session.js';
import { parseLoginFields, type ProxyTarget } from '../passdb/fields.js';
import { mailboxText, orcptValue, rewriteAddress, splitDetail, type Mailbox } from './address.js';
import { backendFailureReply, REPLY } from './replies.js';
import type { BackendRoute } from './upstream.js';

/** Dovecot's LMTP_PROXY_DEFAULT_TIMEOUT_MSECS: a backend's whole transaction, when proxy_timeout is not set. */
export const LMTP_PROXY_DEFAULT_TIMEOUT = 125_000;

export const LMTP_DEFAULT_PORT = 24;
export const SMTP_DEFAULT_PORT = 25;

export type RcptDecision =
  | { readonly kind: 'reply'; readonly reply: string; readonly why: string; readonly warn: boolean }
  | {
      readonly kind: 'backend';
      readonly route: BackendRoute;
      /** The address for the backend's RCPT (rewritten when the passdb renamed the user). */
      readonly address: string;
      /** ORCPT for the backend: the client's, or the original address when it was rewritten. */
      readonly orcpt: string | undefined;
      readonly user: string;
      readonly forward: ReadonlyMap<string, string>;
    };

export async function routeRecipient(session: ClientSession, mailbox: Mailbox, clientOrcpt: string | undefined): Promise<RcptDecision> {
  const { config, passdbs } = session.runtime;
  const original = mailboxText(mailbox);
  const r = splitDetail(mailbox, config.recipient_delimiter);
  const user = normalizeUser(r.username, config.auth_username_format, config.auth_username_chars);
  if (user === null) return unknown(session, original, r.username, 'not a valid user name');
  const result = await passdbs.authenticate(authRequest(session, '', r.username, user, undefined));
  if (result.kind === 'tempfail') return { kind: 'reply', reply: REPLY.lookupTempfail, why: `passdb: ${result.reason}`, warn: true };
  if (result.kind !== 'ok') return unknown(session, original, user, result.kind === 'mismatch' ? `denied by ${result.passdb}` : 'unknown user');
  const parsed = parseLoginFields(result.fields, 'lmtp');
  if (!parsed.ok) return { kind: 'reply', reply: REPLY.internal, why: `passdb returned invalid fields: ${parsed.error}`, warn: true };
  const target = parsed.fields.proxy;
  if (target === undefined) {
    const local = localTarget(session);
    if (local === undefined) {
      return { kind: 'reply', reply: REPLY.internal, why: 'the passdb result has no proxy destination and no local_backend.lmtp is configured', warn: true };
    }
    return decide(session, local, user, user, original, clientOrcpt, new Map());
  }
  let address = original;
  let orcpt = clientOrcpt;
  // Dovecot: `user` and `destuser` both rename the recipient; ORCPT keeps the original.
  const renamed = parsed.fields.destuser ?? parsed.fields.user;
  let destuser = user;
  if (renamed !== undefined && renamed !== user) {
    destuser = renamed;
    const rewritten = rewriteAddress(renamed, r);
    if (rewritten === null) return { kind: 'reply', reply: REPLY.internal, why: `passdb user "${renamed}" is not a valid address`, warn: true };
    address = rewritten;
    if (address !== original) orcpt ??= orcptValue(original);
  }
  return decide(session, target, user, destuser, address, orcpt, target.forward);
}

/** Unknown recipients: local delivery when configured (the backend then decides), else 550. */
function unknown(session: ClientSession, address: string, user: string, why: string): Promise<RcptDecision> | RcptDecision {
  const local = localTarget(session);
  if (local === undefined) return { kind: 'reply', reply: REPLY.userUnknown(address), why, warn: false };
  return decide(session, local, user, user, address, undefined, new Map());
}

function localTarget(session: ClientSession): ProxyTarget | undefined {
  const local = session.runtime.localBackends.lmtp;
  if (local === undefined) return undefined;
  return { mode: 'proxy', always: false, host: local.host, port: local.port, tls: 'none', anyCert: false, nopipelining: false, notTrusted: false, forward: new Map() };
}

async function decide(
  session: ClientSession,
  target: ProxyTarget,
  user: string,
  /** The user the backend will see (for the self-loop check: same place, same user). */
  destuser: string,
  address: string,
  orcpt: string | undefined,
  forward: ReadonlyMap<string, string>,
): Promise<RcptDecision> {
  const { config } = session.runtime;
  const protocol = target.lmtpProtocol ?? 'lmtp';
  const port = target.port ?? (protocol === 'smtp' ? SMTP_DEFAULT_PORT : LMTP_DEFAULT_PORT);
  const timeoutMs = target.timeoutMs ?? LMTP_PROXY_DEFAULT_TIMEOUT;
  let addresses: string[];
  try {
    // No timer (AbortSignal.timeout lives its whole 125 s) for a lookup that needs no DNS: an IP, or a name still cached.
    const known = target.hostip !== undefined ? [target.hostip] : knownAddresses(target.host);
    addresses = known ?? (await resolveHost(target.host, AbortSignal.timeout(timeoutMs)));
  } catch (err) {
    const f = err instanceof ProxyFailureError ? err.failure : undefined;
    return { kind: 'reply', reply: '451 4.4.0 Remote server not answering (DNS lookup)', why: f?.detail ?? errorText(err), warn: true };
  }
  const route = decideRoute({
    target,
    addresses,
    port,
    user,
    destuser,
    selfAddresses: new Set([session.peer.realLocalIp, ...config.auth_proxy_self]),
    selfPort: session.listener.port,
    ttl: session.proxyTtl - 1,
    localBackend: session.runtime.localBackends.lmtp,
  });
  if (route.kind === 'refuse') return { kind: 'reply', reply: backendFailureReply(route.failure), why: route.failure.detail, warn: true };
  const local = route.kind === 'local';
  const ip = local ? route.backend.host : route.address;
  const dport = local ? route.backend.port : route.port;
  const sourceIp = target.sourceIp ?? session.runtime.sourceIps.next();
  const tls = local ? 'none' : target.tls;
  const notTrusted = target.notTrusted;
  return {
    kind: 'backend',
    address,
    orcpt,
    user,
    forward,
    route: {
      // Dovecot shares a connection per (protocol, host, hostip, port, source_ip, ssl).
      key: [protocol, target.host, ip, dport, target.sourceIp ?? '', tls, target.anyCert, target.sslServerName ?? '', notTrusted].join('|'),
      name: local ? `${ip}:${dport} (local)` : `${target.host}:${dport}`,
      protocol,
      host: local ? ip : target.host,
      address: ip,
      port: dport,
      sourceIp,
      tls,
      anyCert: target.anyCert,
      sslServerName: local ? undefined : target.sslServerName,
      notTrusted,
      timeoutMs,
      // A local delivery is not a hop: the TTL is passed on unchanged.
      ttl: local ? session.proxyTtl : session.proxyTtl - 1,
      local,
    },
  };
}
