/**
 * Pre-auth IMAP command framer: fed raw client bytes with `push()`, pulled one event at a time
 * with `next()`, so the consumer can stop after any command (LOGIN, STARTTLS) and hand the
 * rest to `drain()`. It never writes: a synchronising literal becomes a `continue-literal`
 * event and the caller sends `+ OK`. Memory is bounded by maxLineLength + maxLiteralSize per
 * command; a literal's buffer grows only as its bytes arrive. Bare LF ends a line like CRLF
 * (Dovecot accepts it too).
 */
import type { ImapArg } from './args.js';
import { ByteQueue } from './byte-queue.js';
import { TAG_CHAR, allIn, literalMarkerAtEnd } from './chars.js';
import {
  IMAP_LITERAL_MINUS_MAX,
  IMAP_MAX_LINE_LENGTH,
  IMAP_MAX_TAG_LENGTH,
  IMAP_PREAUTH_MAX_ARGS,
  IMAP_PREAUTH_MAX_LIST_DEPTH,
  IMAP_PREAUTH_MAX_LITERAL_SIZE,
} from './limits.js';
import { ArgTokenizer } from './tokenizer.js';
import type { TokenizerLimits } from './tokenizer.js';

export interface ImapCommandReaderOptions {
  /** Bytes per command line, excluding CRLF and literal payloads. Default IMAP_MAX_LINE_LENGTH. */
  readonly maxLineLength?: number;
  /** Literal bytes per command, all literals together. Default IMAP_PREAUTH_MAX_LITERAL_SIZE. */
  readonly maxLiteralSize?: number;
  /** Default IMAP_MAX_TAG_LENGTH. */
  readonly maxTagLength?: number;
  /** Arguments per command, list items included. Default IMAP_PREAUTH_MAX_ARGS. */
  readonly maxArgs?: number;
  /** Default IMAP_PREAUTH_MAX_LIST_DEPTH. */
  readonly maxListDepth?: number;
}

export interface ImapCommand {
  readonly kind: 'command';
  readonly tag: string;
  /** Upper-cased. */
  readonly name: string;
  readonly args: readonly ImapArg[];
  readonly raw: { readonly lineBytes: number; readonly literalBytes: number };
}

/** A synchronising literal was accepted: write `+ OK\r\n` (or call rejectLiteral()). */
export interface ImapContinueLiteral {
  readonly kind: 'continue-literal';
  readonly tag: string;
  readonly name: string;
  readonly size: number;
}

/** The line requested with readRawLine(), without its line end (AUTHENTICATE responses). */
export interface ImapRawLine {
  readonly kind: 'line';
  readonly line: Buffer;
}

/**
 * A command that cannot be run. `detail` is fixed text, never client bytes. `fatal`: the
 * stream cannot be resynchronised; reply (`* BYE`) and close, next() returns null from now on.
 * `tag-invalid` must be answered untagged (`* BAD`) so nothing the client sent is echoed.
 */
export type ImapReadError =
  | { readonly kind: 'error'; readonly error: 'tag-invalid'; readonly fatal: false; readonly detail: string }
  | { readonly kind: 'error'; readonly error: 'syntax'; readonly tag: string; readonly fatal: false; readonly detail: string }
  | { readonly kind: 'error'; readonly error: 'line-too-long'; readonly tag?: string; readonly fatal: true; readonly detail: string }
  | {
      readonly kind: 'error';
      readonly error: 'literal-too-large';
      readonly tag?: string;
      /** Announced size; Infinity for absurd numbers. */
      readonly size: number;
      /** false for `{n}`: the client waits for `+`, so a tagged BAD ends the command. */
      readonly fatal: boolean;
      readonly detail: string;
    };

export type ImapCommandEvent = ImapCommand | ImapContinueLiteral | ImapRawLine | ImapReadError;

interface LiteralRead {
  remaining: number;
  /** Payload bytes so far; undefined while skipping the literal of an invalid command. */
  readonly parts: Buffer[] | undefined;
}

function limitOption(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer`);
  return v;
}

export class ImapCommandReader {
  readonly #maxLine: number;
  readonly #maxLiteral: number;
  readonly #limits: TokenizerLimits;
  readonly #queue = new ByteQueue();
  #cmd: ArgTokenizer | undefined;
  #lineBytes = 0;
  #literalBytes = 0;
  #literal: LiteralRead | undefined;
  #scanFrom = 0;
  #rawNext = false;
  #failed = false;

  constructor(options: ImapCommandReaderOptions = {}) {
    this.#maxLine = limitOption(options.maxLineLength, IMAP_MAX_LINE_LENGTH, 'maxLineLength');
    this.#maxLiteral = limitOption(options.maxLiteralSize, IMAP_PREAUTH_MAX_LITERAL_SIZE, 'maxLiteralSize');
    this.#limits = {
      maxTagLength: limitOption(options.maxTagLength, IMAP_MAX_TAG_LENGTH, 'maxTagLength'),
      maxArgs: limitOption(options.maxArgs, IMAP_PREAUTH_MAX_ARGS, 'maxArgs'),
      maxListDepth: limitOption(options.maxListDepth, IMAP_PREAUTH_MAX_LIST_DEPTH, 'maxListDepth'),
    };
  }

  /** Bytes received and not yet consumed by a returned event (pause the socket when high). */
  get buffered(): number {
    return this.#queue.length;
  }

  /** A fatal error was returned; the stream is unusable. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Queues bytes; nothing is parsed until next(). Ignored after a fatal error. */
  push(chunk: Uint8Array): void {
    if (!this.#failed) this.#queue.push(chunk);
  }

  /** The next event, or null when more bytes are needed (or after a fatal error). */
  next(): ImapCommandEvent | null {
    while (!this.#failed) {
      if (this.#literal !== undefined) {
        if (!this.#readLiteral(this.#literal)) return null;
        continue;
      }
      const limit = this.#rawNext ? this.#maxLine : this.#maxLine - this.#lineBytes;
      const lf = this.#queue.indexOf(0x0a, this.#scanFrom);
      if (lf < 0) {
        this.#scanFrom = this.#queue.length;
        // +1: a CR may be waiting for its LF.
        return this.#queue.length > limit + 1 ? this.#lineTooLong() : null;
      }
      if (lf > limit + 1) return this.#lineTooLong();
      this.#scanFrom = 0;
      const taken = this.#queue.take(lf + 1);
      const end = lf > 0 && taken[lf - 1] === 0x0d ? lf - 1 : lf;
      if (end > limit) return this.#lineTooLong();
      const line = taken.subarray(0, end);
      if (this.#rawNext) {
        this.#rawNext = false;
        return { kind: 'line', line };
      }
      const event = this.#segment(line);
      if (event !== undefined) return event;
    }
    return null;
  }

  /** Returns the next line verbatim as a `line` event (SASL responses after `+ ...`). */
  readRawLine(): void {
    if (this.#cmd !== undefined || this.#literal !== undefined) throw new Error('readRawLine() inside a command');
    this.#rawNext = true;
  }

  /**
   * After `continue-literal`, refuse the literal instead of sending `+`: the caller replies
   * tagged BAD, the client (which waits for `+`) abandons the command, the reader drops it.
   */
  rejectLiteral(): void {
    if (this.#literal?.parts === undefined) throw new Error('no literal to reject');
    this.#resetCommand();
  }

  /**
   * Removes and returns every byte not consumed by a returned event, dropping any command in
   * progress. STARTTLS: discard the result (injection defence); login: hand it to the splice.
   */
  drain(): Buffer {
    this.#resetCommand();
    this.#rawNext = false;
    return this.#queue.takeAll();
  }

  /** One physical line of the current command (line end removed). */
  #segment(line: Buffer): ImapCommandEvent | undefined {
    const cmd = (this.#cmd ??= new ArgTokenizer(this.#limits, 'command'));
    this.#lineBytes += line.length;
    const marker = literalMarkerAtEnd(line);
    if (marker === undefined) {
      cmd.text(line, false);
      return this.#finish(cmd);
    }
    cmd.text(line.subarray(0, marker.start), true);
    if (marker.literal8) cmd.fail('syntax', 'literal8 is not accepted before login');
    const sync = marker.mode === 'sync';
    const budget = this.#maxLiteral - this.#literalBytes;
    const tag = cmd.tag === undefined ? {} : { tag: cmd.tag };
    const tooLarge = marker.size > budget || (marker.mode === 'minus' && marker.size > IMAP_LITERAL_MINUS_MAX);
    if (tooLarge && !sync) return this.#fail({ kind: 'error', error: 'literal-too-large', ...tag, size: marker.size, fatal: true, detail: 'literal too large' });
    if (cmd.failure !== undefined) {
      // A sync literal will not come without `+`; a non-sync one is skipped, never parsed.
      if (sync) return this.#finish(cmd);
      this.#literalBytes += marker.size;
      this.#literal = { remaining: marker.size, parts: undefined };
      return undefined;
    }
    if (tooLarge) {
      this.#resetCommand();
      return { kind: 'error', error: 'literal-too-large', ...tag, size: marker.size, fatal: false, detail: 'literal too large' };
    }
    this.#literalBytes += marker.size;
    this.#literal = { remaining: marker.size, parts: [] };
    if (!sync) return undefined;
    return { kind: 'continue-literal', tag: cmd.tag ?? '', name: cmd.name ?? '', size: marker.size };
  }

  /** Consumes literal bytes as they arrive; true when the literal is complete. */
  #readLiteral(lit: LiteralRead): boolean {
    const n = Math.min(lit.remaining, this.#queue.length);
    if (lit.parts === undefined) this.#queue.skip(n);
    else if (n > 0) lit.parts.push(this.#queue.take(n));
    lit.remaining -= n;
    if (lit.remaining > 0) return false;
    this.#literal = undefined;
    if (lit.parts !== undefined) this.#cmd?.literal(Buffer.concat(lit.parts));
    return true;
  }

  #finish(cmd: ArgTokenizer): ImapCommandEvent {
    const raw = { lineBytes: this.#lineBytes, literalBytes: this.#literalBytes };
    this.#resetCommand();
    const f = cmd.failure;
    const { tag, name } = cmd;
    if (f === undefined && tag !== undefined && name !== undefined) {
      return { kind: 'command', tag, name, args: cmd.args, raw };
    }
    const detail = f?.detail ?? 'invalid command';
    if (f?.error === 'syntax' && tag !== undefined) return { kind: 'error', error: 'syntax', tag, fatal: false, detail };
    return { kind: 'error', error: 'tag-invalid', fatal: false, detail };
  }

  #lineTooLong(): ImapReadError {
    const tag = this.#cmd?.tag ?? this.#peekTag();
    return this.#fail({ kind: 'error', error: 'line-too-long', ...(tag === undefined ? {} : { tag }), fatal: true, detail: 'line too long' });
  }

  /** The tag of a line not yet tokenised, when it is already buffered and valid. */
  #peekTag(): string | undefined {
    if (this.#rawNext || this.#cmd !== undefined) return undefined;
    const head = this.#queue.peek(this.#limits.maxTagLength + 1);
    const sp = head.indexOf(0x20);
    const word = head.subarray(0, sp);
    return sp > 0 && allIn(TAG_CHAR, word) ? word.toString('latin1') : undefined;
  }

  #fail(event: ImapReadError): ImapReadError {
    this.#failed = true;
    this.#resetCommand();
    this.#queue.skip(this.#queue.length);
    return event;
  }

  #resetCommand(): void {
    this.#cmd = undefined;
    this.#literal = undefined;
    this.#lineBytes = 0;
    this.#literalBytes = 0;
    this.#scanFrom = 0;
  }
}
