/**
 * Backend responses (RFC 9051 §7): the fields of one complete response, capability lists,
 * and the untagged CAPABILITY / ID data the upstream login consumes instead of relaying.
 */
import type { ImapArg } from './args.js';
import { literalMarkerAtEnd } from './chars.js';
import { ArgTokenizer } from './tokenizer.js';
import { asciiUpper } from '../../wire/ascii.js';

export type ImapStatus = 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH';

const STATUSES: ReadonlySet<string> = new Set<ImapStatus>(['OK', 'NO', 'BAD', 'BYE', 'PREAUTH']);

export interface ImapResponseCode {
  /** Upper-cased, e.g. `CAPABILITY`, `AUTHENTICATIONFAILED`. */
  readonly name: string;
  /** Raw text after the name inside the brackets ('' when none). */
  readonly args: string;
}

export interface ImapResponse {
  readonly kind: 'response';
  /** The whole response (literals and line ends included), for verbatim relay. */
  readonly raw: Buffer;
  /** `*` untagged, `+` continuation request, or the command tag. */
  readonly tag: string;
  /** Status responses only (RFC 9051 §7.1); absent for data and continuation responses. */
  readonly status?: ImapStatus;
  readonly code?: ImapResponseCode;
  /**
   * Status: the human text after status and code. Data (`* CAPABILITY ...`): everything
   * after `* `. Continuation: everything after `+ ` (e.g. a base64 challenge). Decoded UTF-8.
   */
  readonly text: string;
}

/** True when a line starting like this may carry literals: only untagged data responses. */
export function mayHaveLiterals(firstLine: Buffer): boolean {
  if (firstLine[0] !== 0x2a /* * */ || firstLine[1] !== 0x20) return false;
  const sp = firstLine.indexOf(0x20, 2);
  const word = asciiUpper(firstLine.toString('latin1', 2, sp < 0 ? firstLine.length : sp));
  return !STATUSES.has(word);
}

/** Splits a complete response (`raw` ends with its line end) into its fields. */
export function parseResponse(raw: Buffer): ImapResponse {
  const body = raw.toString('utf8', 0, raw.length - lineEndLength(raw));
  const sp = body.indexOf(' ');
  const tag = sp < 0 ? body : body.slice(0, sp);
  const rest = sp < 0 ? '' : body.slice(sp + 1);
  if (tag === '+') return { kind: 'response', raw, tag, text: rest };
  const sp2 = rest.indexOf(' ');
  const word = asciiUpper(sp2 < 0 ? rest : rest.slice(0, sp2));
  if (!STATUSES.has(word)) return { kind: 'response', raw, tag, text: rest };
  const status = word as ImapStatus;
  let text = sp2 < 0 ? '' : rest.slice(sp2 + 1);
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close > 0) {
      const inside = text.slice(1, close);
      const csp = inside.indexOf(' ');
      const code = { name: asciiUpper(csp < 0 ? inside : inside.slice(0, csp)), args: csp < 0 ? '' : inside.slice(csp + 1) };
      text = text.slice(text.charCodeAt(close + 1) === 0x20 ? close + 2 : close + 1);
      return { kind: 'response', raw, tag, status, code, text };
    }
  }
  return { kind: 'response', raw, tag, status, text };
}

function lineEndLength(raw: Buffer): number {
  if (raw[raw.length - 1] !== 0x0a) return 0;
  return raw.length > 1 && raw[raw.length - 2] === 0x0d ? 2 : 1;
}

/**
 * Backends repeat the same list at every login: parsed sets are shared (read-only), the most
 * recent few kept. Found by comparing the text, not by a Map: a Map hashes the whole text (often
 * 600 characters) at every login, a comparison with a list of another length stops at once.
 */
const parsedCapabilities: { text: string; caps: ReadonlySet<string> }[] = [];
const MAX_PARSED_CAPABILITIES = 16;

/** Capability names of a CAPABILITY response text or code, upper-cased (RFC 9051 §7.2.2). */
export function parseCapabilities(textOrCodeArgs: string): ReadonlySet<string> {
  for (const known of parsedCapabilities) if (known.text === textOrCodeArgs) return known.caps;
  const caps = new Set<string>();
  for (const word of textOrCodeArgs.split(/[ \t]+/)) if (word !== '') caps.add(asciiUpper(word));
  if (parsedCapabilities.length >= MAX_PARSED_CAPABILITIES) parsedCapabilities.pop();
  parsedCapabilities.unshift({ text: textOrCodeArgs, caps });
  return caps;
}

/** The first word of an untagged data response, upper-cased (`CAPABILITY`, `ID`, `EXISTS`). */
export function untaggedName(r: ImapResponse): string | undefined {
  if (r.tag !== '*' || r.status !== undefined) return undefined;
  const text = r.text;
  const sp = text.indexOf(' ');
  const first = sp < 0 ? text : text.slice(0, sp);
  if (!isDigits(first)) return asciiUpper(first);
  const sp2 = sp < 0 ? -1 : text.indexOf(' ', sp + 1);
  return sp < 0 ? '' : asciiUpper(sp2 < 0 ? text.slice(sp + 1) : text.slice(sp + 1, sp2));
}

function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

export function isCapabilityResponse(r: ImapResponse): boolean {
  return untaggedName(r) === 'CAPABILITY';
}

export function isIdResponse(r: ImapResponse): boolean {
  return untaggedName(r) === 'ID';
}

/** Whether the response announces capabilities (untagged CAPABILITY or a `[CAPABILITY ...]` code), without parsing them. */
export function hasCapabilities(r: ImapResponse): boolean {
  return r.code?.name === 'CAPABILITY' || isCapabilityResponse(r);
}

/** Capabilities announced by an untagged CAPABILITY or a `[CAPABILITY ...]` code, if any. */
export function capabilitiesOf(r: ImapResponse): ReadonlySet<string> | undefined {
  if (isCapabilityResponse(r)) return parseCapabilities(r.text.slice('CAPABILITY'.length));
  if (r.code?.name === 'CAPABILITY') return parseCapabilities(r.code.args);
  return undefined;
}

const DATA_LIMITS = { maxTagLength: 0, maxArgs: 10_000, maxListDepth: 16 };

/**
 * The arguments of an untagged data response after its first word (e.g. the list of
 * `* ID (...)`), literals resolved; undefined when they do not parse.
 */
export function responseArgs(r: ImapResponse): readonly ImapArg[] | undefined {
  if (r.tag !== '*' || r.status !== undefined) return undefined;
  const tok = new ArgTokenizer(DATA_LIMITS, 'args');
  const raw = r.raw;
  let pos = raw.indexOf(0x20, raw.indexOf(0x20) + 1) + 1;
  if (pos === 0) return [];
  for (;;) {
    const lf = raw.indexOf(0x0a, pos);
    const lineEnd = lf < 0 ? raw.length : lf > pos && raw[lf - 1] === 0x0d ? lf - 1 : lf;
    const line = raw.subarray(pos, lineEnd);
    const marker = lf < 0 ? undefined : literalMarkerAtEnd(line);
    if (marker === undefined || !Number.isSafeInteger(marker.size)) {
      tok.text(line, false);
      break;
    }
    tok.text(line.subarray(0, marker.start), true);
    const start = lf + 1;
    tok.literal(raw.subarray(start, start + marker.size));
    pos = start + marker.size;
  }
  return tok.failure === undefined ? tok.args : undefined;
}
