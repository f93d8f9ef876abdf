/**
 * POP3 framing without sockets: one bounded line reader for both directions (client commands
 * and SASL responses; backend replies), and the command split. Lines end in CRLF; a bare LF
 * is accepted, as Dovecot does. Nothing is buffered past the limit: a longer line is an error.
 */
import { MAX_SASL_RESPONSE_BYTES } from '../sasl/index.js';

/**
 * Longest AUTH line (command with initial response, or a SASL response): RFC 5034 §4 lifts
 * the 255-octet command limit for them. An 8 KiB SASL response in base64 plus `AUTH <mech> `
 * fits; Dovecot's SASL buffer is the same 8 KiB.
 */
export const POP3_MAX_AUTH_LINE_LENGTH = 4 * Math.ceil(MAX_SASL_RESPONSE_BYTES / 3) + 64;

/** Longest backend reply line during the upstream login (banner, CAPA lines, login reply). */
export const POP3_MAX_RESPONSE_LINE = 8192;

/** Most CAPA lines read from a backend (a real one sends about a dozen). */
export const POP3_MAX_CAPA_LINES = 100;

/** Longest command keyword portier looks at; RFC 1939 keywords are 3–4 characters. */
export const POP3_MAX_KEYWORD_LENGTH = 32;

export type LineEvent = { readonly kind: 'line'; readonly line: Buffer } | { readonly kind: 'too-long' };

export class Pop3LineReader {
  readonly #max: number;
  #buf: Buffer = Buffer.alloc(0);
  /** Bytes already searched for LF, so a slow line is not rescanned from the start. */
  #scanned = 0;

  /** `maxLineLength`: bytes per line, without the line end. */
  constructor(maxLineLength: number) {
    this.#max = maxLineLength;
  }

  get buffered(): number {
    return this.#buf.length;
  }

  push(chunk: Buffer): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
  }

  /** The next complete line without its CRLF/LF; `too-long` once a line passes the limit. */
  next(): LineEvent | null {
    const lf = this.#buf.indexOf(0x0a, this.#scanned);
    if (lf < 0) {
      this.#scanned = this.#buf.length;
      // The limit plus a CR that may still be followed by LF.
      return this.#buf.length > this.#max + 1 ? { kind: 'too-long' } : null;
    }
    const end = lf > 0 && this.#buf[lf - 1] === 0x0d ? lf - 1 : lf;
    if (end > this.#max) return { kind: 'too-long' };
    const line = this.#buf.subarray(0, end);
    this.#buf = this.#buf.subarray(lf + 1);
    this.#scanned = 0;
    return { kind: 'line', line };
  }

  /** Everything not yet returned as a line (handed to the splice, or discarded after STLS). */
  drain(): Buffer {
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    this.#scanned = 0;
    return rest;
  }
}

export interface Pop3Command {
  /** Upper-cased keyword. */
  readonly name: string;
  /** Everything after the first space, unparsed (USER/PASS take it whole, as Dovecot does). */
  readonly args: Buffer | undefined;
}

/** Split a command line into keyword and argument text (RFC 1939 §3: keywords are case-insensitive). */
export function parseCommand(line: Buffer): Pop3Command {
  const sp = line.indexOf(0x20);
  const word = (sp < 0 ? line : line.subarray(0, sp)).subarray(0, POP3_MAX_KEYWORD_LENGTH + 1).toString('latin1');
  return { name: word.toUpperCase(), args: sp < 0 ? undefined : line.subarray(sp + 1) };
}

/** The arguments split on spaces (for AUTH's mechanism and initial response). */
export function splitArgs(args: Buffer | undefined): string[] {
  if (args === undefined) return [];
  return args.toString('latin1').split(' ').filter((a) => a !== '');
}
