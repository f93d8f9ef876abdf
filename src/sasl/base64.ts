/** The base64 layer of SASL exchanges (RFC 4422 §3; RFC 4648 §4, padded, canonical). */

const PADDED_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decode one client line. `=` alone is an empty response (RFC 4959 §3), so is an empty line.
 * Anything that is not exactly padded base64 with zero unused bits gives null: reply BAD/-ERR.
 * The caller checks for `*` (cancel) first.
 */
export function decodeSaslBase64(line: string): Buffer | null {
  if (line === '=' || line === '') return Buffer.alloc(0);
  if (!PADDED_BASE64.test(line)) return null;
  const out = Buffer.from(line, 'base64');
  return out.toString('base64') === line ? out : null;
}

/** Encode a challenge or response; an empty one is the empty string (IMAP `+ `, POP3 `+ `). */
export function encodeSaslBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}
