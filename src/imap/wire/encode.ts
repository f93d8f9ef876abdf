/**
 * The IMAP encoder: strings in the safest form the grammar allows (RFC 9051 §4.3: atom,
 * quoted, literal), commands split where a synchronising literal needs the server's `+`,
 * and reply lines. NUL can appear in no IMAP string (CHAR8 excludes it) and CR/LF only
 * inside literals, so nothing a user controls can end a line early (injection defence R22).
 */
import { SAFE_ATOM_CHAR, SAFE_QUOTED_CHAR, TAG_CHAR, COMMAND_NAME, allIn, isNilBytes } from './chars.js';
import { IMAP_ID_MAX_VALUE_LENGTH } from './limits.js';

export type ImapEncodeErrorCode = 'NUL' | 'NOT_ATOM' | 'NOT_QUOTABLE' | 'BAD_TAG' | 'BAD_NAME' | 'BAD_CODE';

/** A value that cannot be put on the wire safely; its message never contains the value. */
export class ImapEncodeError extends Error {
  readonly code: ImapEncodeErrorCode;

  constructor(code: ImapEncodeErrorCode, message: string) {
    super(message);
    this.name = 'ImapEncodeError';
    this.code = code;
  }
}

export interface EncodeOptions {
  /** The peer announced LITERAL+ (RFC 7888): send `{n+}` and do not wait for `+`. */
  readonly literalPlus: boolean;
}

/** A command argument. A bare string or Buffer is an `astring`. */
export type EncodeArg =
  | string
  | Buffer
  | { readonly type: 'atom'; readonly value: string }
  | { readonly type: 'astring'; readonly value: string | Buffer }
  /** quoted or literal, never an atom (e.g. ID keys, RFC 2971 `string`). */
  | { readonly type: 'string'; readonly value: string | Buffer }
  | { readonly type: 'nil' }
  | { readonly type: 'list'; readonly items: readonly EncodeArg[] };

const CRLF = Buffer.from('\r\n', 'latin1');
const SP = Buffer.from(' ', 'latin1');

function bytesOf(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

function refuseNul(bytes: Buffer): void {
  if (bytes.includes(0)) throw new ImapEncodeError('NUL', 'NUL cannot be sent in an IMAP string');
}

/** Collects output; a synchronising literal closes the current part. */
class PartWriter {
  readonly parts: Buffer[] = [];
  #current: Buffer[] = [];

  write(b: Buffer): void {
    this.#current.push(b);
  }

  /** Ends the current part: the peer must send `+` before the next one. */
  cut(): void {
    this.parts.push(Buffer.concat(this.#current));
    this.#current = [];
  }

  finish(): Buffer[] {
    this.cut();
    return this.parts;
  }
}

function writeString(w: PartWriter, bytes: Buffer, allowAtom: boolean, opts: EncodeOptions): void {
  // Neither the atom nor the quoted byte class holds NUL: only a literal needs the NUL check.
  if (allowAtom && bytes.length > 0 && allIn(SAFE_ATOM_CHAR, bytes) && !isNilBytes(bytes)) {
    w.write(bytes);
  } else if (allIn(SAFE_QUOTED_CHAR, bytes)) {
    w.write(quotedBytes(bytes));
  } else {
    refuseNul(bytes);
    w.write(Buffer.from(`{${bytes.length}${opts.literalPlus ? '+' : ''}}\r\n`, 'latin1'));
    if (!opts.literalPlus) w.cut();
    w.write(bytes);
  }
}

function quotedBytes(bytes: Buffer): Buffer {
  return Buffer.from(`"${bytes.toString('latin1').replace(/["\\]/g, '\\$&')}"`, 'latin1');
}

/**
 * An `astring`: an atom when every byte is a plain atom character (and it is not NIL), a
 * quoted string when it is printable 7-bit, else a literal. With `literalPlus: false` the
 * result contains `{n}\r\n`, after which the peer's `+` is needed: use encodeCommand() to
 * send it. Throws ImapEncodeError('NUL') for NUL.
 */
export function astring(value: Buffer | string, opts: EncodeOptions): Buffer {
  const w = new PartWriter();
  writeString(w, bytesOf(value), true, opts);
  return Buffer.concat(w.finish());
}

/** A quoted string; throws when the value needs a literal (CTL, 8-bit) or has NUL. */
export function quoted(value: Buffer | string): Buffer {
  const bytes = bytesOf(value);
  refuseNul(bytes);
  if (!allIn(SAFE_QUOTED_CHAR, bytes)) throw new ImapEncodeError('NOT_QUOTABLE', 'value needs a literal');
  return quotedBytes(bytes);
}

export interface EncodedCommand {
  /** Write parts[0]; before each later part wait for the server's `+` continuation. */
  readonly parts: readonly Buffer[];
  /** parts.length > 1: a synchronising literal was needed. */
  readonly needsContinuation: boolean;
}

function writeArg(w: PartWriter, arg: EncodeArg, opts: EncodeOptions): void {
  if (typeof arg === 'string' || Buffer.isBuffer(arg)) return writeString(w, bytesOf(arg), true, opts);
  switch (arg.type) {
    case 'atom': {
      const bytes = Buffer.from(arg.value, 'latin1');
      if (bytes.length === 0 || !allIn(SAFE_ATOM_CHAR, bytes) || /[^\x21-\x7e]/.test(arg.value)) {
        throw new ImapEncodeError('NOT_ATOM', 'not an atom');
      }
      return w.write(bytes);
    }
    case 'astring':
      return writeString(w, bytesOf(arg.value), true, opts);
    case 'string':
      return writeString(w, bytesOf(arg.value), false, opts);
    case 'nil':
      return w.write(Buffer.from('NIL', 'latin1'));
    case 'list':
      w.write(Buffer.from('(', 'latin1'));
      arg.items.forEach((item, i) => {
        if (i > 0) w.write(Buffer.from(' ', 'latin1'));
        writeArg(w, item, opts);
      });
      return w.write(Buffer.from(')', 'latin1'));
  }
}

/** `tag SP name *(SP arg) CRLF`, split at synchronising literals (RFC 9051 §7.5). */
export function encodeCommand(tag: string, name: string, args: readonly EncodeArg[], opts: EncodeOptions): EncodedCommand {
  assertTag(tag);
  if (!COMMAND_NAME.test(name)) throw new ImapEncodeError('BAD_NAME', 'invalid command name');
  const w = new PartWriter();
  w.write(Buffer.from(`${tag} ${name}`, 'latin1'));
  for (const arg of args) {
    w.write(SP);
    writeArg(w, arg, opts);
  }
  w.write(CRLF);
  const parts = w.finish();
  return { parts, needsContinuation: parts.length > 1 };
}

/** Printable ASCII without `"` and `\` (addresses, ports, session ids): quoted as it is. */
function isPlainIdValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

/**
 * One ID value (RFC 2971 `nstring`) as text: NIL for null, else a quoted string. Values are
 * metadata, so they are made safe rather than refused: control characters become spaces
 * and the value is cut to maxBytes of UTF-8 (Dovecot accepts 1024). Other UTF-8 stays in
 * the quoted string (RFC 9051 §9 QUOTED-CHAR allows it; Dovecot accepts it).
 */
export function quoteIdValue(value: string | null | undefined, maxBytes: number = IMAP_ID_MAX_VALUE_LENGTH): string {
  if (value === null || value === undefined) return 'NIL';
  if (value.length <= maxBytes && isPlainIdValue(value)) return `"${value}"`;
  let clean = value.replace(/[\x00-\x1f\x7f]/g, ' ');
  if (Buffer.byteLength(clean, 'utf8') > maxBytes) {
    let bytes = 0;
    let cut = '';
    for (const ch of clean) {
      bytes += Buffer.byteLength(ch, 'utf8');
      if (bytes > maxBytes) break;
      cut += ch;
    }
    clean = cut;
  }
  return `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

/** The ID argument: `("key" "value" ...)`, or NIL when there are no parameters. */
export function encodeIdParams(params: Iterable<readonly [string, string | null | undefined]>): string {
  let out = '';
  for (const [k, v] of params) out += `${out === '' ? '(' : ' '}${quoteIdValue(k)} ${quoteIdValue(v)}`;
  return out === '' ? 'NIL' : `${out})`;
}

function assertTag(tag: string): void {
  let ok = tag.length > 0;
  for (let i = 0; ok && i < tag.length; i++) {
    const c = tag.charCodeAt(i);
    ok = c <= 0x7e && TAG_CHAR[c] === 1;
  }
  if (!ok) throw new ImapEncodeError('BAD_TAG', 'invalid tag');
}

/** Reply text is one line: control characters (CR, LF, NUL, ...) become spaces. */
function safeLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, ' ');
}

function replyLine(head: string, code: string | undefined, text: string): Buffer {
  if (code !== undefined && (code === '' || /[\x00-\x1f\x7f\]]/.test(code))) {
    throw new ImapEncodeError('BAD_CODE', 'invalid response code');
  }
  const words = [head];
  if (code !== undefined) words.push(`[${code}]`);
  const t = safeLine(text);
  if (t !== '') words.push(t);
  return Buffer.from(`${words.join(' ')}\r\n`, 'utf8');
}

/** `tag OK|NO|BAD [code] text CRLF` (RFC 9051 §7.1). */
export function tagged(tag: string, status: 'OK' | 'NO' | 'BAD', code: string | undefined, text: string): Buffer {
  assertTag(tag);
  return replyLine(`${tag} ${status}`, code, text);
}

/** `* WORD [code] text CRLF`: a status (OK, NO, BAD, BYE, PREAUTH) or data (CAPABILITY, ID). */
export function untagged(word: string, code: string | undefined, text: string): Buffer {
  if (!/^[A-Za-z0-9]+$/.test(word)) throw new ImapEncodeError('BAD_NAME', 'invalid response name');
  return replyLine(`* ${word}`, code, text);
}

/** `+ text CRLF`: a continuation request (RFC 9051 §7.5), e.g. a base64 SASL challenge. */
export function continuation(text = ''): Buffer {
  return Buffer.from(`+ ${safeLine(text)}\r\n`, 'utf8');
}
