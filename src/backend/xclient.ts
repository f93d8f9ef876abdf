/**
 * The XCLIENT command a trusted proxy sends its backend to pass on the real client (Postfix
 * XCLIENT_README; Dovecot's POP3 and LMTP/SMTP servers accept it from login_trusted_networks).
 * Formatting only: which attributes a backend accepts (its EHLO/LHLO XCLIENT list, POP3's
 * `+OK [XCLIENT]` banner) and the 512-octet SMTP line limit are the caller's concern.
 */

export interface XclientParams {
  /** The client's IP address. */
  readonly addr?: string | undefined;
  readonly port?: number | undefined;
  /** The session id, so backend and proxy log lines can be matched. */
  readonly session?: string | undefined;
  /** Hops left (Dovecot's proxy TTL), already lowered for this hop. */
  readonly ttl?: number | undefined;
  /** passdb `forward_<k>=v` fields, sent as FORWARD=base64(k=v TAB k=v ...) as Dovecot does. */
  readonly forward?: ReadonlyMap<string, string> | undefined;
  readonly helo?: string | undefined;
  readonly login?: string | undefined;
  /** SMTP, ESMTP or LMTP. */
  readonly proto?: string | undefined;
}

export interface XclientOptions {
  /**
   * `xtext` (default): every value xtext-encoded (RFC 3461 §4), as Postfix and Dovecot's
   * lib-smtp (LMTP, submission) decode it. `raw`: values as they are, for Dovecot's POP3
   * XCLIENT, which does not decode xtext (a base64 FORWARD with `+`/`=` would break).
   */
  readonly encoding?: 'xtext' | 'raw';
  /**
   * Prefix an IPv6 ADDR with `IPV6:` (Postfix). Default: on for `xtext`, off for `raw`
   * (Dovecot's POP3 XCLIENT refuses the prefix; older Dovecot LMTP wants it bare too).
   */
  readonly ipv6Prefix?: boolean;
}

/** A value that cannot be sent in raw form (it would split or end the command line). */
export class XclientValueError extends Error {
  constructor(attribute: string) {
    super(`XCLIENT ${attribute} value cannot be sent without xtext encoding`);
    this.name = 'XclientValueError';
  }
}

/**
 * The full `XCLIENT ...` command line, without CRLF. Attribute order: ADDR PORT HELO PROTO
 * LOGIN SESSION TTL FORWARD (Dovecot's POP3 order; the attributes of one command apply
 * together). Absent attributes are left out; with none at all the result is `XCLIENT`.
 */
export function formatXclient(params: XclientParams, options: XclientOptions = {}): string {
  const encoding = options.encoding ?? 'xtext';
  const prefix = options.ipv6Prefix ?? encoding === 'xtext';
  const attrs: [string, string][] = [];
  if (params.addr !== undefined) attrs.push(['ADDR', prefix && params.addr.includes(':') ? `IPV6:${params.addr}` : params.addr]);
  if (params.port !== undefined) attrs.push(['PORT', String(params.port)]);
  if (params.helo !== undefined) attrs.push(['HELO', params.helo]);
  if (params.proto !== undefined) attrs.push(['PROTO', params.proto]);
  if (params.login !== undefined) attrs.push(['LOGIN', params.login]);
  if (params.session !== undefined) attrs.push(['SESSION', params.session]);
  if (params.ttl !== undefined) attrs.push(['TTL', String(params.ttl)]);
  if (params.forward !== undefined && params.forward.size > 0) attrs.push(['FORWARD', encodeForward(params.forward)]);
  let out = 'XCLIENT';
  for (const [name, value] of attrs) {
    if (encoding === 'raw' && !/^[\x21-\x7e]+$/.test(value)) throw new XclientValueError(name);
    out += ` ${name}=${encoding === 'xtext' ? xtextEncode(value) : value}`;
  }
  return out;
}

/** FORWARD's value: `k=v` pairs, each tab-escaped, joined by TAB, in base64 (Dovecot). */
export function encodeForward(fields: ReadonlyMap<string, string>): string {
  const pairs = [...fields].map(([k, v]) => tabEscape(`${k}=${v}`));
  return Buffer.from(pairs.join('\t'), 'utf8').toString('base64');
}

/** The inverse of encodeForward (for tests and for reading a trusted peer's FORWARD). */
export function decodeForward(value: string): Map<string, string> {
  const out = new Map<string, string>();
  const text = Buffer.from(value, 'base64').toString('utf8');
  if (text === '') return out;
  for (const part of text.split('\t')) {
    const pair = tabUnescape(part);
    const eq = pair.indexOf('=');
    if (eq > 0) out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  return out;
}

/** RFC 3461 §4 xtext: `!`..`~` except `+` and `=` as is, every other octet as `+HH`. */
export function xtextEncode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x21 && byte <= 0x7e && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Dovecot's str_tabescape: \x01 → \x011, TAB → \x01t, CR → \x01r, LF → \x01n, NUL → \x010. */
function tabEscape(s: string): string {
  return s.replace(/[\x00\x01\t\r\n]/g, (c) => `\x01${TAB_ESCAPES[c] ?? ''}`);
}

function tabUnescape(s: string): string {
  return s.replace(/\x01([01trn])/g, (_m, c: string) => TAB_UNESCAPES[c] ?? '');
}

const TAB_ESCAPES: Readonly<Record<string, string>> = { '\x00': '0', '\x01': '1', '\t': 't', '\r': 'r', '\n': 'n' };
const TAB_UNESCAPES: Readonly<Record<string, string>> = { '0': '\x00', '1': '\x01', t: '\t', r: '\r', n: '\n' };
