/**
 * Parsed command arguments and the typed accessors front-ends use on them (RFC 9051 §9:
 * astring, nstring, the ID parameter list of RFC 2971 §3.1).
 */
import { IMAP_ID_MAX_PARAMS, IMAP_ID_MAX_VALUE_LENGTH } from './limits.js';
import { asciiUpper } from '../../wire/ascii.js';

/** One argument. `string` is a quoted string or a literal, its bytes exactly as sent. */
export type ImapArg =
  | { readonly type: 'atom'; readonly value: string }
  | { readonly type: 'string'; readonly value: Buffer }
  | { readonly type: 'nil' }
  | { readonly type: 'list'; readonly items: readonly ImapArg[] };

const NIL_BYTES = Buffer.from('NIL', 'latin1');

/** The bytes of an `astring` argument (atom, quoted or literal; a bare NIL is the atom "NIL"). */
export function asAString(arg: ImapArg | undefined): Buffer | undefined {
  switch (arg?.type) {
    case 'atom':
      return Buffer.from(arg.value, 'latin1');
    case 'string':
      return arg.value;
    case 'nil':
      return NIL_BYTES;
    default:
      return undefined;
  }
}

/** An `nstring`: quoted or literal bytes, or null for NIL; undefined when it is neither. */
export function asNString(arg: ImapArg | undefined): Buffer | null | undefined {
  if (arg?.type === 'string') return arg.value;
  if (arg?.type === 'nil') return null;
  return undefined;
}

/** An atom's value upper-cased (e.g. a SASL mechanism name); undefined when not an atom. */
export function asAtom(arg: ImapArg | undefined): string | undefined {
  return arg?.type === 'atom' ? asciiUpper(arg.value) : undefined;
}

export type IdParams = ReadonlyArray<readonly [key: string, value: string | null]>;

export type IdParamsResult =
  | { readonly ok: true; readonly params: IdParams }
  | { readonly ok: false; readonly reason: 'syntax' | 'too-many' | 'too-long' };

export interface IdParamsLimits {
  readonly maxParams?: number;
  readonly maxValueLength?: number;
}

/**
 * The arguments of `ID` (RFC 2971 §3.1: `"ID" SP ( "(" string SP nstring *(...) ")" / nil )`)
 * as ordered key/value pairs, bounded as in Dovecot (30 pairs, 1024 bytes each).
 */
export function readIdParams(args: readonly ImapArg[], limits: IdParamsLimits = {}): IdParamsResult {
  const maxParams = limits.maxParams ?? IMAP_ID_MAX_PARAMS;
  const maxValue = limits.maxValueLength ?? IMAP_ID_MAX_VALUE_LENGTH;
  const [only, ...extra] = args;
  if (only === undefined || extra.length > 0) return { ok: false, reason: 'syntax' };
  if (only.type === 'nil') return { ok: true, params: [] };
  if (only.type !== 'list' || only.items.length % 2 !== 0) return { ok: false, reason: 'syntax' };
  if (only.items.length / 2 > maxParams) return { ok: false, reason: 'too-many' };
  const params: Array<readonly [string, string | null]> = [];
  for (let i = 0; i < only.items.length; i += 2) {
    const key = only.items[i];
    const value = asNString(only.items[i + 1]);
    if (key?.type !== 'string' || value === undefined) return { ok: false, reason: 'syntax' };
    if (key.value.length > maxValue || (value !== null && value.length > maxValue)) {
      return { ok: false, reason: 'too-long' };
    }
    params.push([key.value.toString('utf8'), value === null ? null : value.toString('utf8')]);
  }
  return { ok: true, params };
}
