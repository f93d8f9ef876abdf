/**
 * Passdb extra fields parsed once into a typed decision (Dovecot's auth_proxy_settings_parse).
 * Every driver's result goes through `parseLoginFields`; nothing else reads raw fields.
 */
import { isIP } from 'node:net';
import type { Protocol } from '../config/schema.js';
import { parseDuration } from '../config/units.js';
import type { Fields } from './types.js';

export type ProxyMode = 'proxy' | 'proxy_maybe';
export type BackendTls = 'none' | 'ssl' | 'starttls';

export interface ProxyTarget {
  readonly mode: ProxyMode;
  /** `proxy_always` with `proxy_maybe`: when the host is self, placement picks the backend. */
  readonly always: boolean;
  /** As given: a name (kept for SNI and certificate checks) or an IP. */
  readonly host: string;
  /** IP to connect to when `host` is a name (skips DNS). */
  readonly hostip?: string | undefined;
  /** portier `ssl_server_name`: the name the backend's certificate must carry (and SNI), when `host` is an IP or differs. */
  readonly sslServerName?: string | undefined;
  /** Undefined means the protocol's default (with TLS: its TLS port). */
  readonly port?: number | undefined;
  readonly destuser?: string | undefined;
  readonly master?: string | undefined;
  /** The password for the backend login (the passdb's `pass`); secret. */
  readonly pass?: Buffer | undefined;
  readonly tls: BackendTls;
  /** `ssl=any-cert` / `starttls=any-cert`: no certificate verification. */
  readonly anyCert: boolean;
  readonly timeoutMs?: number | undefined;
  readonly nopipelining: boolean;
  readonly notTrusted: boolean;
  readonly sourceIp?: string | undefined;
  /** `forward_<name>` fields, sent as ID x-forward-<name> / XCLIENT FORWARD. */
  readonly forward: ReadonlyMap<string, string>;
  /** LMTP: `protocol=lmtp|smtp`. */
  readonly lmtpProtocol?: 'lmtp' | 'smtp' | undefined;
}

export interface LoginFields {
  /** `user` field: the canonical name to continue with. */
  readonly user?: string | undefined;
  readonly nopassword: boolean;
  readonly nologin: boolean;
  readonly reason?: string | undefined;
  readonly nodelay: boolean;
  readonly allowNets?: readonly string[] | undefined;
  readonly allowRealNets?: readonly string[] | undefined;
  /** Present when the result routes somewhere (proxy, proxy_maybe, or a referral host). */
  readonly proxy?: ProxyTarget | undefined;
  /** `host` without proxy: a login referral. */
  readonly referralHost?: string | undefined;
  readonly referralPort?: number | undefined;
  readonly destuser?: string | undefined;
  /** Fields we do not act on, kept for logs at debug level. */
  readonly unknown: readonly string[];
}

/** Shared by every result without unknown or forward_ fields (both are read-only): no allocation per login. */
const NONE: readonly string[] = Object.freeze([]);
const NO_FORWARD: ReadonlyMap<string, string> = new Map();

/** The fields portier understands; anything else is kept and reported as unknown. */
const KNOWN = new Set([
  'password', 'user', 'username', 'proxy', 'proxy_maybe', 'proxy_always', 'host', 'hostip', 'ssl_server_name', 'port',
  'destuser', 'master', 'pass', 'nopassword', 'ssl', 'starttls', 'proxy_timeout', 'nologin', 'reason',
  'allow_nets', 'allow_real_nets', 'nodelay', 'proxy_nopipelining', 'proxy_not_trusted', 'source_ip',
  'protocol', 'uid', 'gid', 'home', 'mail', 'noauthenticate', 'nodelay',
]);

/**
 * Dovecot boolean fields are true when present; SQL NULL means absent. portier also reads an
 * explicit n/no/false/0 as false, where Dovecot would take any value as "set".
 */
export function flag(fields: Fields, name: string): boolean {
  const v = fields.get(name);
  if (v === undefined) return false;
  return !/^(n|no|false|0)$/i.test(v.trim());
}

export type FieldsParse = { ok: true; fields: LoginFields } | { ok: false; error: string };

export function parseLoginFields(fields: Fields, protocol: Protocol): FieldsParse {
  let unknown: string[] | undefined;
  for (const k of fields.keys()) if (!KNOWN.has(k) && !k.startsWith('forward_') && !k.startsWith('userdb_')) (unknown ??= []).push(k);
  const host = nonEmpty(fields.get('host'));
  const portText = nonEmpty(fields.get('port'));
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) return { ok: false, error: `invalid port "${portText}"` };
  }
  const proxy = flag(fields, 'proxy');
  const maybe = flag(fields, 'proxy_maybe');
  const allowNets = netField(fields.get('allow_nets'));
  const allowRealNets = netField(fields.get('allow_real_nets'));
  // One object for the result, every field declared here (a spread of a base object into a
  // second one made two objects per login, the second in V8's dictionary mode).
  const out: { -readonly [K in keyof LoginFields]: LoginFields[K] } = {
    user: nonEmpty(fields.get('user')),
    nopassword: flag(fields, 'nopassword'),
    nologin: flag(fields, 'nologin'),
    reason: nonEmpty(fields.get('reason')),
    nodelay: flag(fields, 'nodelay'),
    allowNets,
    allowRealNets,
    destuser: nonEmpty(fields.get('destuser')),
    unknown: unknown ?? NONE,
    proxy: undefined,
    referralHost: undefined,
    referralPort: undefined,
  };
  if (!proxy && !maybe) {
    out.referralHost = host;
    out.referralPort = port;
    return { ok: true, fields: out };
  }
  if (host === undefined) return { ok: false, error: 'proxy requested but the host field is missing' };
  const tls = parseTls(fields);
  if (typeof tls === 'string') return { ok: false, error: tls };
  const hostip = nonEmpty(fields.get('hostip'));
  if (hostip !== undefined && isIP(hostip) === 0) return { ok: false, error: `invalid hostip "${hostip}"` };
  const sslServerName = nonEmpty(fields.get('ssl_server_name'))?.toLowerCase();
  if (sslServerName !== undefined && isIP(sslServerName) === 0 && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/.test(sslServerName)) {
    return { ok: false, error: `invalid ssl_server_name "${sslServerName.slice(0, 100)}" (a host name or IP)` };
  }
  const timeoutText = nonEmpty(fields.get('proxy_timeout'));
  let timeoutMs: number | undefined;
  if (timeoutText !== undefined) {
    const t = parseDuration(timeoutText);
    if (t === null || t === 0) return { ok: false, error: `invalid proxy_timeout "${timeoutText}"` };
    timeoutMs = t;
  }
  const sourceIp = nonEmpty(fields.get('source_ip'));
  if (sourceIp !== undefined && isIP(sourceIp) === 0) return { ok: false, error: `invalid source_ip "${sourceIp}"` };
  const lmtpProtocol = nonEmpty(fields.get('protocol'));
  if (protocol === 'lmtp' && lmtpProtocol !== undefined && lmtpProtocol !== 'lmtp' && lmtpProtocol !== 'smtp') {
    return { ok: false, error: `invalid protocol "${lmtpProtocol}" (lmtp or smtp)` };
  }
  const pass = fields.get('pass');
  let forward: Map<string, string> | undefined;
  for (const [k, v] of fields) if (k.startsWith('forward_') && k.length > 8) (forward ??= new Map()).set(k.slice(8), v);
  out.proxy = {
    mode: proxy ? 'proxy' : 'proxy_maybe',
    always: flag(fields, 'proxy_always'),
    host,
    hostip,
    sslServerName,
    port,
    destuser: out.destuser,
    master: nonEmpty(fields.get('master')),
    pass: pass === undefined ? undefined : Buffer.from(pass, 'utf8'),
    tls: tls.tls,
    anyCert: tls.anyCert,
    timeoutMs,
    nopipelining: flag(fields, 'proxy_nopipelining'),
    notTrusted: flag(fields, 'proxy_not_trusted'),
    sourceIp,
    forward: forward ?? NO_FORWARD,
    lmtpProtocol: lmtpProtocol as 'lmtp' | 'smtp' | undefined,
  };
  return { ok: true, fields: out };
}

function parseTls(fields: Fields): { tls: BackendTls; anyCert: boolean } | string {
  const ssl = fields.get('ssl');
  const starttls = fields.get('starttls');
  if (ssl !== undefined && !/^(n|no|false|0)$/i.test(ssl.trim())) {
    const v = ssl.trim().toLowerCase();
    if (v !== 'yes' && v !== 'y' && v !== 'any-cert' && v !== '') return `invalid ssl value "${ssl}" (yes or any-cert)`;
    if (starttls !== undefined && flag(fields, 'starttls')) return 'ssl and starttls cannot both be set';
    return { tls: 'ssl', anyCert: v === 'any-cert' };
  }
  if (starttls !== undefined && flag(fields, 'starttls')) {
    const v = starttls.trim().toLowerCase();
    if (v !== 'yes' && v !== 'y' && v !== 'any-cert' && v !== '') return `invalid starttls value "${starttls}" (yes or any-cert)`;
    return { tls: 'starttls', anyCert: v === 'any-cert' };
  }
  return { tls: 'none', anyCert: false };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

function netField(v: string | undefined): string[] | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  return v.split(/[\s,]+/).filter((x) => x !== '');
}

/**
 * Dovecot's extra_fields text: space-separated `key=value` or bare `key` (true). Values may not
 * contain spaces in passwd-file; that is Dovecot's format too.
 */
export function parseExtraFields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const token of text.trim().split(/\s+/)) {
    if (token === '') continue;
    const eq = token.indexOf('=');
    if (eq < 0) out.set(token, '');
    else out.set(token.slice(0, eq), token.slice(eq + 1));
  }
  return out;
}
