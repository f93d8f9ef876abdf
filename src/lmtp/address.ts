/**
 * Envelope addresses and ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2, §3.3), the
 * recipient detail (`user+detail`, Dovecot's recipient_delimiter) and ORCPT (RFC 3461 §4.2).
 * Pure functions; the front-end turns a parse error into its reply.
 */
import { xtextEncode } from '../backend/xclient.js';

/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the brackets. */
export const MAX_PATH_LENGTH = 256;

export interface Mailbox {
  /** The local part as written (a dot-string, or a quoted string with its quotes). */
  readonly local: string;
  /** Without quotes and backslashes: what a user name is made of. */
  readonly localText: string;
  readonly domain: string | undefined;
}

/** `local@domain` (or just `local`) as it is sent on. */
export function mailboxText(m: Mailbox): string {
  return m.domain === undefined ? m.local : `${m.local}@${m.domain}`;
}

export type PathParse =
  | { readonly ok: true; readonly mailbox: Mailbox | null; readonly params: ReadonlyMap<string, string | undefined> }
  | { readonly ok: false; readonly error: string };

const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+$/;
const DOMAIN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[\x21-\x5a\x5e-\x7e]+\])$/;
const PARAM = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$/;

/**
 * `FROM:<path> [params]` / `TO:<path> [params]` after the verb. `null` mailbox is the null
 * path `<>` (MAIL only). Whitespace before the path is tolerated, as Postfix and Dovecot do.
 */
export function parsePathArgs(args: string, keyword: 'FROM' | 'TO'): PathParse {
  const head = args.slice(0, keyword.length + 1).toUpperCase();
  if (head !== `${keyword}:`) return { ok: false, error: `expected ${keyword}:<address>` };
  const rest = args.slice(keyword.length + 1).replace(/^ +/, '');
  if (!rest.startsWith('<')) return { ok: false, error: "missing '<' at the beginning of the path" };
  const close = findClose(rest);
  if (close < 0) return { ok: false, error: "missing '>' at the end of the path" };
  if (close + 1 > MAX_PATH_LENGTH) return { ok: false, error: 'path too long' };
  const inner = rest.slice(1, close);
  const after = rest.slice(close + 1);
  if (after !== '' && !after.startsWith(' ')) return { ok: false, error: 'junk after the path' };
  const params = parseParams(after.trim());
  if (params === null) return { ok: false, error: 'invalid parameter' };
  if (inner === '') return { ok: true, mailbox: null, params };
  const mailbox = parseMailbox(stripRoute(inner));
  if (mailbox === null) return { ok: false, error: 'invalid address' };
  return { ok: true, mailbox, params };
}

/** The index of the `>` closing the path, skipping quoted strings. */
function findClose(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '>') return i;
  }
  return -1;
}

/** RFC 5321 §4.1.2 source routes (`@a,@b:user@c`) are ignored (§C). */
function stripRoute(path: string): string {
  if (!path.startsWith('@')) return path;
  const colon = path.indexOf(':');
  return colon < 0 ? path : path.slice(colon + 1);
}

export function parseMailbox(text: string): Mailbox | null {
  let local: string;
  let localText: string;
  let rest: string;
  if (text.startsWith('"')) {
    let i = 1;
    let value = '';
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) {
        const next = text.charCodeAt(i + 1);
        if (!(next >= 0x20 && next <= 0x7e)) return null;
        value += text[i + 1];
        i++;
      } else if (c === 0x22) break;
      else if (c >= 0x20 && c <= 0x7e) value += text[i];
      else return null;
    }
    if (i >= text.length) return null;
    local = text.slice(0, i + 1);
    localText = value;
    rest = text.slice(i + 1);
  } else {
    const at = text.lastIndexOf('@');
    local = at < 0 ? text : text.slice(0, at);
    if (local === '' || local.split('.').some((atom) => !ATEXT.test(atom))) return null;
    localText = local;
    rest = at < 0 ? '' : text.slice(at);
  }
  if (rest === '') return { local, localText, domain: undefined };
  if (!rest.startsWith('@')) return null;
  const domain = rest.slice(1);
  if (!DOMAIN.test(domain)) return null;
  return { local, localText, domain };
}

/** `KEY[=value]` words; keys upper-cased; null on a syntax error or a repeated key. */
export function parseParams(text: string): Map<string, string | undefined> | null {
  const out = new Map<string, string | undefined>();
  if (text === '') return out;
  for (const word of text.split(/ +/)) {
    const m = PARAM.exec(word);
    if (m === null || m[1] === undefined) return null;
    const key = m[1].toUpperCase();
    if (out.has(key)) return null;
    out.set(key, m[2]);
  }
  return out;
}

/** The user name part of a recipient, and its detail (Dovecot: the first delimiter found). */
export interface Recipient {
  /** `local@domain` without the detail: the name looked up in the passdbs. */
  readonly username: string;
  readonly detail: string | undefined;
  /** The delimiter character that introduced the detail. */
  readonly delimiter: string | undefined;
}

export function splitDetail(m: Mailbox, delimiters: string): Recipient {
  const local = m.localText;
  let at = -1;
  if (delimiters !== '') {
    for (let i = 0; i < local.length; i++) {
      if (delimiters.includes(local[i] ?? '')) {
        at = i;
        break;
      }
    }
  }
  const base = at < 0 ? local : local.slice(0, at);
  const username = m.domain === undefined ? base : `${base}@${m.domain}`;
  if (at < 0) return { username, detail: undefined, delimiter: undefined };
  return { username, detail: local.slice(at + 1), delimiter: local[at] };
}

/**
 * The address to deliver to when the passdb renamed the user (`user` / `destuser`): the new
 * name with the original detail put back before the `@` (Dovecot's lmtp-proxy.c). Null when
 * the new name is not a usable address.
 */
export function rewriteAddress(newName: string, r: Recipient): string | null {
  const m = parseMailbox(newName);
  if (m === null) return null;
  if (r.detail === undefined || r.delimiter === undefined) return mailboxText(m);
  const local = `${m.localText}${r.delimiter}${r.detail}`;
  const withDetail = parseMailbox(m.domain === undefined ? local : `${local}@${m.domain}`);
  return withDetail === null ? null : mailboxText(withDetail);
}

/** RFC 3461 §4.2: `rfc822;` and the original address in xtext. */
export function orcptValue(original: string): string {
  return `rfc822;${xtextEncode(original)}`;
}

/** RFC 3461 §4: xtext decoding (`+HH`); null on a malformed escape. */
export function xtextDecode(value: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x2b) {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/i.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c >= 0x21 && c <= 0x7e && c !== 0x3d) {
      bytes.push(c);
    } else {
      return null;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
