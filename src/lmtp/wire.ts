/**
 * LMTP/SMTP framing without sockets: a bounded line reader (client commands, backend reply
 * lines), the command split, and the reply reader for backend replies (RFC 5321 §4.2:
 * `ddd-text` continuation lines, then `ddd text`). A line ends in CRLF; a bare LF is accepted
 * in command lines, as Dovecot and Postfix do. Nothing is buffered past a limit.
 */

/** Longest client command line, without CRLF (RFC 5321 §4.5.3.1.4 asks for 512; RCPT parameters need more). */
export const LMTP_MAX_COMMAND_LINE = 4096;

/** Longest backend reply line, and most lines in one reply (Dovecot's LMTP_MAX_REPLY_SIZE is 4096). */
export const LMTP_MAX_REPLY_LINE = 4096;
export const LMTP_MAX_REPLY_LINES = 100;

import { LineReader, type LineEvent } from '../wire/lines.js';

export { LineReader, type LineEvent };

export interface LmtpCommand {
  /** Upper-cased verb. */
  readonly verb: string;
  /** Everything after the verb and one space, as text (latin1, byte for byte). */
  readonly args: string;
}

/** Longest verb looked at; SMTP verbs are four letters (XCLIENT is seven). */
const MAX_VERB_LENGTH = 16;

/** RFC 5321 §4.1.1: a verb, then (for most commands) a space and arguments. */
export function parseCommand(line: Buffer): LmtpCommand {
  const text = line.toString('latin1');
  const sp = text.indexOf(' ');
  const verb = (sp < 0 ? text : text.slice(0, sp)).slice(0, MAX_VERB_LENGTH + 1).toUpperCase();
  return { verb, args: sp < 0 ? '' : text.slice(sp + 1) };
}

/** One backend reply: its code, the enhanced status code when given (RFC 2034), and its text lines. */
export interface SmtpReply {
  readonly code: number;
  /** `x.y.z` from the first line, when the backend sent one. */
  readonly enhanced: string | undefined;
  /** Text of each line without the code (and without the enhanced code on the first line). */
  readonly lines: readonly string[];
}

export type ReplyEvent = { readonly kind: 'reply'; readonly reply: SmtpReply } | { readonly kind: 'error'; readonly detail: string };

const REPLY_LINE = /^([2-5]\d\d)([ -])(.*)$/s;
const ENHANCED = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;

/** Backend replies, one at a time; any framing violation is an error event (the connection is unusable). */
export class SmtpReplyReader {
  readonly #lines = new LineReader(LMTP_MAX_REPLY_LINE);
  #partial: { code: number; lines: string[] } | undefined;
  #failed: string | undefined;

  push(chunk: Buffer): void {
    this.#lines.push(chunk);
  }

  next(): ReplyEvent | null {
    if (this.#failed !== undefined) return { kind: 'error', detail: this.#failed };
    for (;;) {
      const ev = this.#lines.next();
      if (ev === null) return null;
      if (ev.kind === 'too-long') return this.#fail('reply line too long');
      const text = ev.line.toString('latin1');
      const m = REPLY_LINE.exec(text) ?? (/^[2-5]\d\d$/.test(text) ? [text, text, ' ', ''] : null);
      if (m === null) return this.#fail(`invalid reply line: ${printable(text)}`);
      const code = Number(m[1]);
      const more = m[2] === '-';
      const body = m[3] ?? '';
      const partial = this.#partial ?? { code, lines: [] };
      if (partial.code !== code) return this.#fail(`reply code changed within a reply (${partial.code} then ${code})`);
      if (partial.lines.length >= LMTP_MAX_REPLY_LINES) return this.#fail('reply has too many lines');
      partial.lines.push(body);
      if (more) {
        this.#partial = partial;
        continue;
      }
      this.#partial = undefined;
      const first = partial.lines[0] ?? '';
      const enh = ENHANCED.exec(first);
      // The enhanced code's class must match the reply's (RFC 2034 §4); otherwise it is just text.
      const enhanced = enh?.[1] !== undefined && enh[1][0] === String(code)[0] ? enh[1] : undefined;
      const lines = enhanced === undefined ? partial.lines : [first.slice(enhanced.length).trimStart(), ...partial.lines.slice(1)];
      return { kind: 'reply', reply: { code, enhanced, lines } };
    }
  }

  #fail(detail: string): ReplyEvent {
    this.#failed = detail;
    return { kind: 'error', detail };
  }
}

/** A backend line for the log: printable, bounded. */
export function printable(text: string, max = 160): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}
