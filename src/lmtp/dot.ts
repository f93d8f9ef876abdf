/**
 * DATA content framing (RFC 5321 §4.5.2), both ways, streaming and without sockets.
 *
 * `DotDecoder` reads what a client sends after `354`: dot-unstuffing, and the end only at
 * CRLF "." CRLF. A bare LF ends a line too and is stored as CRLF; a "." line next to a bare
 * LF is content, never the end (Postfix's `smtpd_forbid_bare_newline = normalize`), so an
 * `LF . LF` smuggled inside a message stays inside it. `DotEncoder` writes a message for a
 * backend: a "." added to every line that starts with one, then CRLF "." CRLF.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');
const DOT_CRLF = Buffer.from('.\r\n');
const DOT_ONLY = Buffer.from('.');
const CR_ONLY = Buffer.from('\r');

export interface DecodeResult {
  /** Message bytes decoded from this chunk (slices of it, plus CRLFs for bare LFs). */
  readonly data: Buffer[];
  /** The terminating "." line was seen. */
  readonly done: boolean;
  /** Bytes after the terminating line (pipelined commands), when done. */
  readonly rest: Buffer;
}

type State =
  /** At the start of a line. */
  | 'start'
  /** The line so far is a held ".". */
  | 'dot'
  /** The line so far is a held ".\r". */
  | 'dot-cr'
  /** Inside a line. */
  | 'mid';

export class DotDecoder {
  #state: State = 'start';
  /** The line before the current one ended in CRLF (the start of DATA counts as such). */
  #prevCrlf = true;
  /** The last byte of the current line, in state `mid`, was CR. */
  #lastCr = false;
  #done = false;
  #bareLf = 0;

  get done(): boolean {
    return this.#done;
  }

  /** Bare LFs seen (each stored as CRLF), for the log. */
  get bareLf(): number {
    return this.#bareLf;
  }

  push(chunk: Buffer): DecodeResult {
    if (this.#done) return { data: [], done: true, rest: chunk };
    const out: Buffer[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case 'start': {
          if (chunk[i] === DOT) {
            this.#state = 'dot';
            i++;
          } else {
            this.#state = 'mid';
            this.#lastCr = false;
          }
          break;
        }
        case 'dot': {
          const b = chunk[i];
          if (b === CR) {
            this.#state = 'dot-cr';
            i++;
          } else if (b === LF) {
            // "." then a bare LF: a content line ".", not the end.
            out.push(DOT_CRLF);
            this.#bareLf++;
            this.#lineEnd(false);
            i++;
          } else {
            // A leading dot with more on the line is removed (§4.5.2); the rest is ordinary.
            this.#state = 'mid';
            this.#lastCr = false;
          }
          break;
        }
        case 'dot-cr': {
          if (chunk[i] === LF) {
            i++;
            if (this.#prevCrlf) {
              this.#done = true;
              return { data: out, done: true, rest: chunk.subarray(i) };
            }
            out.push(DOT_CRLF);
            this.#lineEnd(true);
          } else {
            // ".\r" and more: the dot goes, the CR is content.
            out.push(CR_ONLY);
            this.#state = 'mid';
            this.#lastCr = true;
          }
          break;
        }
        case 'mid': {
          const lf = chunk.indexOf(LF, i);
          if (lf < 0) {
            out.push(chunk.subarray(i));
            this.#lastCr = chunk[n - 1] === CR;
            i = n;
            break;
          }
          if (lf > i) this.#lastCr = chunk[lf - 1] === CR;
          if (this.#lastCr) {
            out.push(chunk.subarray(i, lf + 1));
            this.#lineEnd(true);
          } else {
            if (lf > i) out.push(chunk.subarray(i, lf));
            out.push(CRLF);
            this.#bareLf++;
            this.#lineEnd(false);
          }
          i = lf + 1;
          break;
        }
      }
    }
    return { data: out, done: false, rest: Buffer.alloc(0) };
  }

  #lineEnd(crlf: boolean): void {
    this.#state = 'start';
    this.#prevCrlf = crlf;
    this.#lastCr = false;
  }
}

/** Dot-stuffing for a backend, chunk by chunk; `end()` gives the terminator. */
export class DotEncoder {
  #lineStart = true;
  #empty = true;
  /** The last two bytes written, to know whether the message ended in CRLF. */
  #tail = 0;

  /** Stuffed bytes for this chunk of message content (slices of it, plus the added dots). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    if (n === 0) return out;
    this.#empty = false;
    let i = 0;
    while (i < n) {
      if (this.#lineStart && chunk[i] === DOT) out.push(DOT_ONLY);
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        out.push(chunk.subarray(i));
        this.#lineStart = false;
        break;
      }
      out.push(chunk.subarray(i, lf + 1));
      this.#lineStart = true;
      i = lf + 1;
    }
    this.#tail = n >= 2 ? ((chunk[n - 2] ?? 0) << 8) | (chunk[n - 1] ?? 0) : ((this.#tail & 0xff) << 8) | (chunk[0] ?? 0);
    return out;
  }

  /** CRLF "." CRLF, with a CRLF first if the content did not end in one. */
  end(): Buffer {
    if (this.#empty || this.#tail === ((CR << 8) | LF)) return DOT_CRLF;
    return Buffer.concat([CRLF, DOT_CRLF]);
  }
}

/** A whole message stuffed and terminated (for tests and small messages). */
export function dotStuff(message: Buffer): Buffer {
  const enc = new DotEncoder();
  return Buffer.concat([...enc.push(message), enc.end()]);
}

/** A whole DATA section decoded (for tests): the message, or null when the end never came. */
export function dotUnstuff(wire: Buffer): { message: Buffer; rest: Buffer } | null {
  const dec = new DotDecoder();
  const r = dec.push(wire);
  return r.done ? { message: Buffer.concat(r.data), rest: r.rest } : null;
}
