/**
 * Strict decoders for stored password values, the crypt(3) base64 alphabet, and the comparison
 * helpers every scheme uses. Node's own hex/base64 decoders skip invalid input silently, so a
 * corrupt passdb entry would decode to something; these return null instead.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const HEX = /^(?:[0-9a-fA-F]{2})*$/;
const BASE64 = /^[A-Za-z0-9+/]*$/;

/** Hex of either case, even length; null for anything else. */
export function decodeHex(text: string): Buffer | null {
  return HEX.test(text) ? Buffer.from(text, 'hex') : null;
}

/**
 * Standard base64 (RFC 4648 §4); padding optional but correct when present, and the unused
 * trailing bits must be zero, so one stored value has exactly one spelling.
 */
export function decodeBase64(text: string): Buffer | null {
  const body = text.replace(/={1,2}$/, '');
  if (!BASE64.test(body) || body.length % 4 === 1) return null;
  if (body.length !== text.length && text.length % 4 !== 0) return null;
  const out = Buffer.from(body, 'base64');
  return out.toString('base64').replace(/=+$/, '') === body ? out : null;
}

/** The crypt(3) alphabet: `./0-9A-Za-z`, least significant 6 bits first. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Encode 24 bits as `count` crypt-base64 characters (b64_from_24bit in Drepper's spec). */
export function cryptB64(b2: number, b1: number, b0: number, count: number): string {
  let w = (b2 << 16) | (b1 << 8) | b0;
  let out = '';
  for (let i = 0; i < count; i++) {
    out += CRYPT_ALPHABET.charAt(w & 0x3f);
    w >>>= 6;
  }
  return out;
}

/** Random salt text over the crypt alphabet (also used for PBKDF2, whose salt is text). */
export function cryptSalt(length: number, random: Buffer): string {
  let out = '';
  for (let i = 0; i < length; i++) out += CRYPT_ALPHABET.charAt((random[i] ?? 0) & 0x3f);
  return out;
}

/** Constant-time equality of two fixed-size digests; a length difference is not secret. */
export function digestEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time equality of variable-length secrets: compares SHA-256 digests, so the length is not leaked either. */
export function secretEqual(a: Uint8Array, b: Uint8Array): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}
