/**
 * The tokeniser of one logical IMAP line (RFC 9051 §9: tag SP command *(SP argument)), fed
 * segment by segment: the text of each physical line up to its end or its literal marker,
 * then each literal's payload. It never sees partial tokens, so it keeps no byte buffer; it
 * stops at the first error and keeps only that error.
 */
import type { ImapArg } from './args.js';
import { ATOM_INPUT, COMMAND_NAME, TAG_CHAR, allIn, isNil } from './chars.js';
import { IMAP_MAX_COMMAND_NAME_LENGTH } from './limits.js';
import { asciiUpper } from '../../wire/ascii.js';

export interface TokenizerLimits {
  readonly maxTagLength: number;
  readonly maxArgs: number;
  readonly maxListDepth: number;
}

/** `tag-invalid`: the line is not IMAP-shaped, reply untagged. `syntax`: reply to the tag. */
export interface ParseFailure {
  readonly error: 'tag-invalid' | 'syntax';
  /** Fixed text for logs and BAD replies; never contains client bytes. */
  readonly detail: string;
}

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;

export class ArgTokenizer {
  readonly #limits: TokenizerLimits;
  #phase: 'tag' | 'name' | 'args';
  #tag: string | undefined;
  #name: string | undefined;
  readonly #stack: ImapArg[][] = [[]];
  #needSep = false;
  #items = 0;
  #failure: ParseFailure | undefined;

  /** `command` starts at the tag; `args` parses a bare argument list (response data). */
  constructor(limits: TokenizerLimits, start: 'command' | 'args') {
    this.#limits = limits;
    this.#phase = start === 'command' ? 'tag' : 'args';
  }

  /** The tag once it has been read and found valid. */
  get tag(): string | undefined {
    return this.#tag;
  }

  /** The command name, upper-cased. */
  get name(): string | undefined {
    return this.#name;
  }

  get failure(): ParseFailure | undefined {
    return this.#failure;
  }

  get args(): readonly ImapArg[] {
    return this.#stack[0] ?? [];
  }

  fail(error: ParseFailure['error'], detail: string): void {
    this.#failure ??= { error: this.#tag === undefined ? 'tag-invalid' : error, detail };
  }

  /**
   * One segment of text. `atLiteral`: the segment ends where a literal marker starts (the
   * literal must begin an argument); otherwise it ends the logical line.
   */
  text(seg: Buffer, atLiteral: boolean): void {
    let i = 0;
    if (this.#failure === undefined && this.#phase === 'tag') i = this.#readTag(seg, atLiteral);
    if (this.#failure === undefined && this.#phase === 'name') i = this.#readName(seg, i, atLiteral);
    if (this.#failure === undefined && this.#phase === 'args') this.#readArgs(seg, i, atLiteral);
  }

  /** A literal's payload, as the next argument (CHAR8 excludes NUL: RFC 9051 §9). */
  literal(value: Buffer): void {
    if (this.#failure !== undefined) return;
    if (value.includes(0)) return this.fail('syntax', 'NUL in literal');
    this.#push({ type: 'string', value });
  }

  #readTag(seg: Buffer, atLiteral: boolean): number {
    const sp = seg.indexOf(SP);
    const word = seg.subarray(0, sp < 0 ? seg.length : sp);
    if (word.length === 0) {
      this.fail('tag-invalid', seg.length === 0 && !atLiteral ? 'empty command line' : 'missing tag');
    } else if (word.length > this.#limits.maxTagLength || !allIn(TAG_CHAR, word) || (sp < 0 && atLiteral)) {
      this.fail('tag-invalid', 'invalid tag');
    } else {
      this.#tag = word.toString('latin1');
      if (sp < 0) this.fail('syntax', 'missing command name');
      this.#phase = 'name';
    }
    return sp + 1;
  }

  #readName(seg: Buffer, from: number, atLiteral: boolean): number {
    const sp = seg.indexOf(SP, from);
    const end = sp < 0 ? seg.length : sp;
    const word = seg.toString('latin1', from, end);
    if (word.length === 0) {
      this.fail('syntax', 'missing command name');
    } else if ((sp < 0 && atLiteral) || word.length > IMAP_MAX_COMMAND_NAME_LENGTH || !COMMAND_NAME.test(word)) {
      // Not a command word (e.g. `GET / HTTP/1.1`): not IMAP, so the tag is not echoed either.
      this.#failure = { error: 'tag-invalid', detail: 'invalid command name' };
    } else {
      this.#name = asciiUpper(word);
      this.#phase = 'args';
    }
    return sp < 0 ? seg.length : sp + 1;
  }

  #readArgs(seg: Buffer, from: number, atLiteral: boolean): void {
    const n = seg.length;
    let i = from;
    while (i < n && this.#failure === undefined) {
      const c = seg[i] as number;
      if (this.#needSep) {
        if (c === SP) {
          this.#needSep = false;
          i++;
        } else if (c === RPAREN) {
          i = this.#close(i);
        } else {
          this.fail('syntax', 'missing space between arguments');
        }
        continue;
      }
      if (c === SP) {
        // One trailing space at the end of the line is tolerated (some clients send it).
        if (i === n - 1 && !atLiteral && this.#stack.length === 1) i++;
        else this.fail('syntax', 'unexpected space');
      } else if (c === LPAREN) {
        if (this.#stack.length > this.#limits.maxListDepth) {
          this.fail('syntax', 'lists nested too deeply');
        } else {
          const items: ImapArg[] = [];
          this.#push({ type: 'list', items });
          this.#stack.push(items);
          this.#needSep = false;
          i++;
        }
      } else if (c === RPAREN) {
        i = this.#close(i);
      } else if (c === DQUOTE) {
        i = this.#readQuoted(seg, i);
      } else if (c === 0x7b || (c === 0x7e && seg[i + 1] === 0x7b)) {
        this.fail('syntax', 'literal not at the end of the line');
      } else {
        i = this.#readAtom(seg, i);
      }
    }
    if (this.#failure !== undefined) return;
    if (atLiteral && this.#needSep) this.fail('syntax', 'missing space before literal');
    if (!atLiteral && this.#stack.length > 1) this.fail('syntax', 'unbalanced parenthesis');
  }

  #readAtom(seg: Buffer, from: number): number {
    let j = from;
    while (j < seg.length && ATOM_INPUT[seg[j] as number] === 1) j++;
    const stop = seg[j];
    if (stop !== undefined && stop !== SP && stop !== RPAREN) {
      this.fail('syntax', stop >= 0x80 ? '8-bit data in atom' : stop < 0x20 || stop === 0x7f ? 'control character in atom' : 'invalid character in atom');
      return j;
    }
    const value = seg.toString('latin1', from, j);
    this.#push(isNil(value) ? { type: 'nil' } : { type: 'atom', value });
    return j;
  }

  /** RFC 9051 §4.3: only `\\` and `\"` are escapes; CR, LF and NUL never appear inside. */
  #readQuoted(seg: Buffer, from: number): number {
    const out = Buffer.allocUnsafe(seg.length - from);
    let len = 0;
    let j = from + 1;
    for (;;) {
      const b = seg[j];
      if (b === undefined) {
        this.fail('syntax', 'unterminated quoted string');
        return j;
      }
      if (b === DQUOTE) break;
      if (b === BACKSLASH) {
        const e = seg[j + 1];
        if (e !== DQUOTE && e !== BACKSLASH) {
          this.fail('syntax', 'invalid escape in quoted string');
          return j;
        }
        out[len++] = e;
        j += 2;
      } else if (b === 0x00 || b === 0x0d) {
        this.fail('syntax', 'invalid character in quoted string');
        return j;
      } else {
        out[len++] = b;
        j++;
      }
    }
    this.#push({ type: 'string', value: Buffer.from(out.subarray(0, len)) });
    return j + 1;
  }

  #close(i: number): number {
    if (this.#stack.length === 1) {
      this.fail('syntax', 'unbalanced parenthesis');
    } else {
      this.#stack.pop();
      this.#needSep = true;
    }
    return i + 1;
  }

  #push(arg: ImapArg): void {
    if (++this.#items > this.#limits.maxArgs) return this.fail('syntax', 'too many arguments');
    (this.#stack[this.#stack.length - 1] as ImapArg[]).push(arg);
    this.#needSep = true;
  }
}
