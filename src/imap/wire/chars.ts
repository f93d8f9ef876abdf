/**
 * Byte classes of the IMAP grammar (RFC 9051 §9) as lookup tables, and the literal marker
 * (`{n}`, `{n+}`, `{n-}`, `~{n}`) found at the end of a line.
 */

function table(pred: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = pred(c) ? 1 : 0;
  return t;
}

const isPrintable = (c: number): boolean => c >= 0x21 && c <= 0x7e;

/**
 * Bytes the reader accepts inside an atom. Like Dovecot's parser this is wider than
 * ATOM-CHAR: list-wildcards, `\` (flags) and `]` are accepted, so only `(`, `)`, `{`, DQUOTE,
 * SP, CTL and 8-bit end or break an atom.
 */
export const ATOM_INPUT = table((c) => isPrintable(c) && c !== 0x28 && c !== 0x29 && c !== 0x7b && c !== 0x22);

/**
 * Tag bytes: RFC 9051 `tag = 1*<any ASTRING-CHAR except "+">`, and also no `/`, as Dovecot's
 * `imap_is_valid_tag` (so HTTP request lines never get a tagged, echoed reply).
 */
export const TAG_CHAR = table((c) => isPrintable(c) && !'(){%*"\\+/'.includes(String.fromCharCode(c)));

/**
 * What the encoder sends as an atom: ATOM-CHAR minus `[` and `]`, a conservative subset every
 * server parses the same way.
 */
export const SAFE_ATOM_CHAR = table((c) => isPrintable(c) && !'(){%*"\\[]'.includes(String.fromCharCode(c)));

/** What the encoder puts inside a quoted string: printable 7-bit (DQUOTE and `\` escaped). */
export const SAFE_QUOTED_CHAR = table((c) => c >= 0x20 && c <= 0x7e);

/** Command names: a letter, then letters, digits, `-` or `_` (every IMAP command fits). */
export const COMMAND_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

export function allIn(t: Uint8Array, bytes: Uint8Array): boolean {
  for (const b of bytes) if (t[b] !== 1) return false;
  return true;
}

export type LiteralMode = 'sync' | 'plus' | 'minus';

export interface LiteralMarker {
  /** Offset of `{` (or of `~` for literal8) in the line. */
  readonly start: number;
  /** Announced size; Infinity when the number has more than 15 digits. */
  readonly size: number;
  /** `{n}` synchronising, `{n+}` LITERAL+, `{n-}` LITERAL- (RFC 7888). */
  readonly mode: LiteralMode;
  /** `~{n}`: literal8 (RFC 3516), which pre-auth commands never need. */
  readonly literal8: boolean;
}

/**
 * The literal marker that ends `line` (CRLF already removed), if any. RFC 9051 §4.3: a literal
 * is announced at the end of a line; quoted strings cannot span lines, so a trailing `{n}` is
 * always a marker, even on an otherwise invalid line.
 */
export function literalMarkerAtEnd(line: Uint8Array): LiteralMarker | undefined {
  let i = line.length - 1;
  if (i < 0 || line[i] !== 0x7d /* } */) return undefined;
  i--;
  let mode: LiteralMode = 'sync';
  if (line[i] === 0x2b /* + */) {
    mode = 'plus';
    i--;
  } else if (line[i] === 0x2d /* - */) {
    mode = 'minus';
    i--;
  }
  const digitsEnd = i + 1;
  while (i >= 0 && (line[i] ?? 0) >= 0x30 && (line[i] ?? 0) <= 0x39) i--;
  const digitsStart = i + 1;
  if (digitsStart === digitsEnd || i < 0 || line[i] !== 0x7b /* { */) return undefined;
  const literal8 = i > 0 && line[i - 1] === 0x7e; /* ~ */
  const start = literal8 ? i - 1 : i;
  const digits = Buffer.from(line.buffer, line.byteOffset + digitsStart, digitsEnd - digitsStart).toString('latin1');
  const size = digits.replace(/^0+(?=\d)/, '').length > 15 ? Number.POSITIVE_INFINITY : Number(digits);
  return { start, size, mode, literal8 };
}

/** `NIL` in any case (RFC 9051 §4.5): as an atom it means no value, not the string "NIL". */
export function isNil(s: string): boolean {
  return s.length === 3 && (s.charCodeAt(0) | 0x20) === 0x6e && (s.charCodeAt(1) | 0x20) === 0x69 && (s.charCodeAt(2) | 0x20) === 0x6c;
}

/** isNil for bytes, without decoding them. */
export function isNilBytes(b: Uint8Array): boolean {
  return b.length === 3 && ((b[0] as number) | 0x20) === 0x6e && ((b[1] as number) | 0x20) === 0x69 && ((b[2] as number) | 0x20) === 0x6c;
}
