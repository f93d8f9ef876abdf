/**
 * Dovecot's CRAM-MD5 / HMAC-MD5 stored form: the HMAC-MD5 key schedule frozen after one block,
 * i.e. MD5 state after (key⊕opad) ‖ state after (key⊕ipad), four little-endian u32 each, outer
 * first (hmac_md5_get_cram_context). node:crypto hides MD5 state, so the compression is here.
 */
import { createHash } from 'node:crypto';
import { digestEqual } from './encoding.js';

/** Length of a stored context in bytes (64 hex characters). */
export const CRAM_MD5_CONTEXT_LENGTH = 32;

const BLOCK = 64;
const IV = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;
const K = Uint32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32));
const R = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21] as const;

type State = [number, number, number, number];

/** One MD5 compression of the 64-byte block at `off` into `st` (RFC 1321 §3.4). */
function compress(st: State, block: Buffer, off: number): void {
  let [a, b, c, d] = st;
  for (let i = 0; i < 64; i++) {
    const round = i >>> 4;
    let f: number;
    let g: number;
    if (round === 0) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (round === 1) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (round === 2) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const sum = (a + f + (K[i] ?? 0) + block.readUInt32LE(off + 4 * g)) >>> 0;
    const s = R[(round << 2) | (i & 3)] ?? 0;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) >>> 0;
  }
  st[0] = (st[0] + a) >>> 0;
  st[1] = (st[1] + b) >>> 0;
  st[2] = (st[2] + c) >>> 0;
  st[3] = (st[3] + d) >>> 0;
}

/** Finish MD5 from `st`, which has already absorbed `prefix` bytes (a whole number of blocks). */
function finish(start: State, prefix: number, data: Uint8Array): Buffer {
  const st: State = [...start];
  const total = prefix + data.length;
  const padded = Buffer.alloc((((data.length + 8) >>> 6) + 1) * BLOCK);
  padded.set(data);
  padded[data.length] = 0x80;
  padded.writeUInt32LE((total * 8) >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor((total * 8) / 2 ** 32) >>> 0, padded.length - 4);
  for (let off = 0; off < padded.length; off += BLOCK) compress(st, padded, off);
  const out = Buffer.alloc(16);
  st.forEach((w, i) => out.writeUInt32LE(w, 4 * i));
  return out;
}

/** Plain MD5 through this compression function; exists so tests can check it against node:crypto. */
export function md5(data: Uint8Array): Buffer {
  return finish([...IV], 0, data);
}

/** The 32-byte stored context for `password` (Dovecot's cram_md5_generate). */
export function cramMd5Context(password: Uint8Array): Buffer {
  const key = Buffer.alloc(BLOCK);
  if (password.length > BLOCK) createHash('md5').update(password).digest().copy(key);
  else key.set(password);
  const inner: State = [...IV];
  const outer: State = [...IV];
  compress(inner, Buffer.from(key.map((x) => x ^ 0x36)), 0);
  compress(outer, Buffer.from(key.map((x) => x ^ 0x5c)), 0);
  const out = Buffer.alloc(CRAM_MD5_CONTEXT_LENGTH);
  [...outer, ...inner].forEach((w, i) => out.writeUInt32LE(w, 4 * i));
  return out;
}

/** HMAC-MD5(key, message) resumed from a stored context; null when the context is not 32 bytes. */
export function hmacMd5FromContext(context: Uint8Array, message: Uint8Array): Buffer | null {
  if (context.length !== CRAM_MD5_CONTEXT_LENGTH) return null;
  const ctx = Buffer.from(context);
  const word = (i: number): number => ctx.readUInt32LE(4 * i);
  const outer: State = [word(0), word(1), word(2), word(3)];
  const inner: State = [word(4), word(5), word(6), word(7)];
  return finish(outer, BLOCK, finish(inner, BLOCK, message));
}

/** Constant-time check of a CRAM-MD5 digest (RFC 2195) against a stored context. */
export function cramMd5Matches(context: Uint8Array, challenge: Uint8Array, digest: Uint8Array): boolean {
  const expected = hmacMd5FromContext(context, challenge);
  return expected !== null && digestEqual(expected, digest);
}
