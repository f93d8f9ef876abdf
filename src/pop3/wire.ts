/**
 * POP3 framing without sockets: the limits for the shared line reader (wire/lines.ts) in both
 * directions (client commands and SASL responses; backend replies), and the command split.
 */
import { MAX_SASL_RESPONSE_BYTES } from '../sasl/index.js';
import { asciiUpper } from '../wire/ascii.js';

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

export { LineReader as Pop3LineReader, type LineEvent } from '../wire/lines.js';

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
  return { name: asciiUpper(word), args: sp < 0 ? undefined : line.subarray(sp + 1) };
}

/** The arguments split on spaces (for AUTH's mechanism and initial response). */
export function splitArgs(args: Buffer | undefined): string[] {
  if (args === undefined) return [];
  return args.toString('latin1').split(' ').filter((a) => a !== '');
}
