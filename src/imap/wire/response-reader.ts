/**
 * Backend response framer for the upstream login: push() raw bytes, next() one complete
 * response at a time. A literal `{n}` at the end of a line of an untagged data response is
 * read as part of that response (RFC 9051 §4.3); status and continuation lines never carry
 * literals, so a text ending in `{5}` there is just text. Bounded by maxResponseSize.
 */
import { ByteQueue } from './byte-queue.js';
import { literalMarkerAtEnd } from './chars.js';
import { IMAP_MAX_RESPONSE_SIZE } from './limits.js';
import { mayHaveLiterals, parseResponse } from './response.js';
import type { ImapResponse } from './response.js';

export interface ImapResponseReaderOptions {
  /** Bytes per response, literals and line ends included. Default IMAP_MAX_RESPONSE_SIZE. */
  readonly maxResponseSize?: number;
}

/** The backend broke the framing or a limit: a protocol failure, the reader is unusable. */
export interface ImapResponseError {
  readonly kind: 'error';
  readonly error: 'too-long';
  readonly detail: string;
}

export type ImapResponseEvent = ImapResponse | ImapResponseError;

export class ImapResponseReader {
  readonly #max: number;
  readonly #queue = new ByteQueue();
  /** Parts of the response being assembled (lines and literals, verbatim). */
  #parts: Buffer[] = [];
  #size = 0;
  #literalLeft = 0;
  #scanFrom = 0;
  #failed = false;

  constructor(options: ImapResponseReaderOptions = {}) {
    const max = options.maxResponseSize ?? IMAP_MAX_RESPONSE_SIZE;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('maxResponseSize must be a positive integer');
    this.#max = max;
  }

  get buffered(): number {
    return this.#queue.length;
  }

  get failed(): boolean {
    return this.#failed;
  }

  push(chunk: Uint8Array): void {
    if (!this.#failed) this.#queue.push(chunk);
  }

  /** The next complete response, or null when more bytes are needed (or after an error). */
  next(): ImapResponseEvent | null {
    while (!this.#failed) {
      if (this.#literalLeft > 0) {
        const n = Math.min(this.#literalLeft, this.#queue.length);
        if (n === 0) return null;
        this.#parts.push(this.#queue.take(n));
        this.#literalLeft -= n;
        continue;
      }
      const room = this.#max - this.#size;
      const lf = this.#queue.indexOf(0x0a, this.#scanFrom);
      if (lf < 0) {
        this.#scanFrom = this.#queue.length;
        return this.#queue.length >= room ? this.#fail('response too long') : null;
      }
      if (lf + 1 > room) return this.#fail('response too long');
      this.#scanFrom = 0;
      const line = this.#queue.take(lf + 1);
      this.#parts.push(line);
      this.#size += line.length;
      const first = this.#parts[0] as Buffer;
      const marker = mayHaveLiterals(first) ? literalMarkerAtEnd(line.subarray(0, lf > 0 && line[lf - 1] === 0x0d ? lf - 1 : lf)) : undefined;
      if (marker !== undefined) {
        if (marker.size > this.#max - this.#size) return this.#fail('literal too large');
        this.#literalLeft = marker.size;
        this.#size += marker.size;
        continue;
      }
      const raw = this.#parts.length === 1 ? first : Buffer.concat(this.#parts);
      this.#parts = [];
      this.#size = 0;
      return parseResponse(raw);
    }
    return null;
  }

  /**
   * Removes and returns the bytes after the last returned response. After LOGIN's tagged OK
   * they go to the splice verbatim; after STARTTLS's OK they must be discarded (RFC 9051
   * §11.1: response injection before the TLS handshake).
   */
  drain(): Buffer {
    const pending = Buffer.concat([...this.#parts, this.#queue.takeAll()]);
    this.#parts = [];
    this.#size = 0;
    this.#literalLeft = 0;
    this.#scanFrom = 0;
    return pending;
  }

  #fail(detail: string): ImapResponseError {
    this.#failed = true;
    this.#parts = [];
    this.#queue.skip(this.#queue.length);
    return { kind: 'error', error: 'too-long', detail };
  }
}
