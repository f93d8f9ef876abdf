import { ProxyHeaderReader, type ProxyParse, type ProxyReaderOptions } from '../../../src/listen/proxy-protocol.js';

/** Feed `bytes` in pieces cut at `cuts` (sorted offsets); stop at the first verdict. */
export function readSplit(bytes: Uint8Array, cuts: readonly number[], options?: ProxyReaderOptions): { result: ProxyParse; fed: number } {
  const reader = new ProxyHeaderReader(options);
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to < from) continue;
    const result = reader.push(bytes.subarray(from, to));
    from = to;
    if (result.state !== 'need-more') return { result, fed: from };
  }
  return { result: { state: 'need-more' }, fed: from };
}

export function readWhole(bytes: Uint8Array, options?: ProxyReaderOptions): ProxyParse {
  return readSplit(bytes, [], options).result;
}

/** One byte per push; `fed` tells after how many bytes the verdict came. */
export function readBytewise(bytes: Uint8Array, options?: ProxyReaderOptions): { result: ProxyParse; fed: number } {
  return readSplit(bytes, Array.from({ length: bytes.length }, (_, i) => i + 1), options);
}

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Narrow a result in a test; fails with the actual state otherwise. */
export function expectState<S extends ProxyParse['state']>(r: ProxyParse, state: S): Extract<ProxyParse, { state: S }> {
  if (r.state !== state) throw new Error(`expected ${state}, got ${JSON.stringify(r)}`);
  return r as Extract<ProxyParse, { state: S }>;
}
