import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSaslBase64, encodeSaslBase64 } from '../../../src/sasl/index.js';

describe('decodeSaslBase64', () => {
  it('decodes the RFC 4648 §10 vectors', () => {
    const vectors: ReadonlyArray<readonly [string, string]> = [
      ['', ''], ['f', 'Zg=='], ['fo', 'Zm8='], ['foo', 'Zm9v'], ['foob', 'Zm9vYg=='], ['fooba', 'Zm9vYmE='], ['foobar', 'Zm9vYmFy'],
    ];
    for (const [plain, b64] of vectors) {
      expect(decodeSaslBase64(b64)?.toString()).toBe(plain);
      expect(encodeSaslBase64(Buffer.from(plain))).toBe(b64);
    }
  });

  it('`=` is an empty response (RFC 4959), as is an empty line', () => {
    expect(decodeSaslBase64('=')?.length).toBe(0);
    expect(decodeSaslBase64('')?.length).toBe(0);
  });

  it.each(['*', 'Zg', 'Zg=', 'Zh==', 'Zm9=', 'Z===', '==', 'Zm9v\r\n', ' Zm9v', 'Zm 9v', 'Zm9v====', 'Zg==Zg==', 'Zm9_', 'Zm9-', 'AAAA=', 'ü'])(
    'rejects %j',
    (line) => {
      expect(decodeSaslBase64(line)).toBeNull();
    },
  );

  it('round-trips any bytes and never throws on any string', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
      expect(decodeSaslBase64(encodeSaslBase64(b))?.equals(Buffer.from(b))).toBe(true);
    }));
    fc.assert(fc.property(fc.string({ maxLength: 64 }), (s) => {
      const out = decodeSaslBase64(s);
      if (out !== null) expect(encodeSaslBase64(out) === s || s === '=').toBe(true);
    }), { numRuns: 2000 });
  });
});
