/**
 * Case folding for protocol words (status words, command and capability names, SASL
 * mechanisms). V8's `toUpperCase` is a call into ICU for every string, also for ones that
 * are already upper case, which is what backends send; this returns those as they are.
 */

/** `s.toUpperCase()`; the string itself when it has no lower-case ASCII letter and no non-ASCII character. */
export function asciiUpper(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x61 && c <= 0x7a) || c >= 0x80) return s.toUpperCase();
  }
  return s;
}

