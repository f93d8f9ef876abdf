/**
 * A bounded line reader without sockets, shared by the POP3 and LMTP framers in both
 * directions (client commands, backend replies). A line ends in CRLF; a bare LF is accepted,
 * as Dovecot does. Nothing is buffered past the limit: a longer line is an error event.
 */
export type LineEvent = { readonly kind: 'line'; readonly line: Buffer } | { readonly kind: 'too-long' };

export class LineReader {
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
    if (chunk.length === 0) return;
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

  /** Everything not yet returned as a line (DATA content, spliced bytes, input discarded after STARTTLS). */
  drain(): Buffer {
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    this.#scanned = 0;
    return rest;
  }
}
