import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalIPv6 } from '../../../src/listen/netmatch.js';
import {
  buildProxyHeaderV1, buildProxyHeaderV2, type ProxyHeaderV1Input, type ProxyHeaderV2Input, type ProxyTlvsInput,
} from '../../../src/listen/proxy-protocol-build.js';
import { PROXY_V2_SIGNATURE, type ProxyHeader, type ProxyMode, type ProxyParse, type ProxyTlvs } from '../../../src/listen/proxy-protocol.js';
import { readBytewise, readSplit, readWhole } from './proxy-helpers.js';

interface Case { bytes: Buffer; expected: ProxyHeader }

const port = fc.integer({ min: 0, max: 65535 });
const v4 = fc.ipV4();
const v6 = fc.ipV6().filter((a) => canonicalIPv6(a) !== undefined);
const ep = (addr: fc.Arbitrary<string>) => fc.record({ address: addr, port });
const safeText = fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
const canon = (a: string): string => canonicalIPv6(a) ?? a;

const v1Case: fc.Arbitrary<Case> = fc
  .oneof(
    fc.record({ family: fc.constant('tcp4' as const), source: ep(v4), destination: ep(v4) }),
    fc.record({ family: fc.constant('tcp6' as const), source: ep(v6), destination: ep(v6) }),
    fc.constant({ family: 'unknown' as const }),
  )
  .map((input: ProxyHeaderV1Input) => {
    const expected: ProxyHeader = { version: 1, command: 'proxy', family: input.family, tlvs: { raw: [] } };
    if (input.source !== undefined && input.destination !== undefined) {
      expected.source = { address: canon(input.source.address), port: input.source.port };
      expected.destination = { address: canon(input.destination.address), port: input.destination.port };
    }
    return { bytes: buildProxyHeaderV1(input), expected };
  });

const tlvsInput: fc.Arbitrary<ProxyTlvsInput> = fc.record(
  {
    alpn: fc.constantFrom('imap', 'pop3', 'lmtp', 'h2'),
    authority: safeText,
    uniqueId: fc.uint8Array({ maxLength: 128 }),
    ssl: fc.record(
      { client: fc.integer({ min: 0, max: 7 }), verify: fc.constantFrom(0, 1, 20), version: safeText, cn: safeText, cipher: safeText },
      { requiredKeys: ['client'] },
    ),
    raw: fc.array(fc.record({ type: fc.integer({ min: 0xe0, max: 0xef }), value: fc.uint8Array({ maxLength: 20 }) }), { maxLength: 3 }),
    noop: fc.integer({ min: 0, max: 10 }),
    crc32c: fc.boolean(),
  },
  { requiredKeys: [] },
);

function expectedTlvs(t: ProxyTlvsInput): ProxyTlvs {
  const out: ProxyTlvs = { raw: (t.raw ?? []).map((r) => ({ type: r.type, value: Buffer.from(r.value) })) };
  if (t.alpn !== undefined) out.alpn = t.alpn;
  if (t.authority !== undefined) out.authority = t.authority;
  if (t.uniqueId !== undefined) out.uniqueId = Buffer.from(t.uniqueId);
  if (t.ssl !== undefined) {
    const { client, verify = 0, ...strings } = t.ssl;
    out.ssl = { client, verify, verified: verify === 0 && (client & 6) !== 0, ...strings };
  }
  return out;
}

const v2Case: fc.Arbitrary<Case> = fc
  .record({
    command: fc.constantFrom('proxy' as const, 'local' as const),
    addr: fc.oneof(
      fc.record({ family: fc.constant('tcp4' as const), source: ep(v4), destination: ep(v4) }),
      fc.record({ family: fc.constant('tcp6' as const), source: ep(v6), destination: ep(v6) }),
      fc.record({ family: fc.constant('unix' as const), source: ep(fc.stringMatching(/^\/[a-z0-9/._-]{0,100}$/)), destination: ep(fc.constant('/run/portier.sock')) }),
      fc.constant({ family: 'unknown' as const }),
    ),
    tlvs: tlvsInput,
  })
  .map(({ command, addr, tlvs }) => {
    const input: ProxyHeaderV2Input = { command, ...addr, tlvs };
    let expected: ProxyHeader = { version: 2, command: 'local', family: 'unknown', tlvs: { raw: [] } };
    if (command === 'proxy') {
      expected = { version: 2, command, family: addr.family, tlvs: addr.family === 'unknown' ? { raw: [] } : expectedTlvs(tlvs) };
      if (addr.family !== 'unknown') {
        const p = (port: number): number => (addr.family === 'unix' ? 0 : port);
        expected.source = { address: canon(addr.source.address), port: p(addr.source.port) };
        expected.destination = { address: canon(addr.destination.address), port: p(addr.destination.port) };
      }
    }
    return { bytes: buildProxyHeaderV2(input), expected };
  });

const headerCase = fc.oneof(v1Case, v2Case);
const cutsFor = (len: number) => fc.uniqueArray(fc.integer({ min: 0, max: len }), { maxLength: 12 }).map((a) => a.sort((x, y) => x - y));

/** Same verdict whatever the split: `rest` plus the bytes not yet fed is the whole tail. */
function sameVerdict(whole: ProxyParse, split: { result: ProxyParse; fed: number }, bytes: Buffer): void {
  const r = split.result;
  expect(r.state).toBe(whole.state);
  if (r.state === 'error' && whole.state === 'error') expect(r.reason).toBe(whole.reason);
  if (r.state === 'done' && whole.state === 'done') expect(r.header).toEqual(whole.header);
  if ((r.state === 'done' || r.state === 'not-proxy') && (whole.state === 'done' || whole.state === 'not-proxy')) {
    expect(Buffer.concat([r.rest, bytes.subarray(split.fed)])).toEqual(whole.rest);
  }
}

// Random bytes, bytes behind a signature, v1-ish text, and valid headers with bytes flipped,
// inserted or cut: the last two reach deep into the parser.
const fuzzInput: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from(a)])),
  fc
    .array(fc.constantFrom(...'PROXY TCP4 TCP6 UNKNOWN 0123456789abcdefABCDEF:.%- \r\n\0'.split('')), { maxLength: 130 })
    .map((chars) => Buffer.from(`PROXY ${chars.join('')}`, 'latin1')),
  fc
    .tuple(headerCase, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut')), { minLength: 1, maxLength: 4 }))
    .map(([c, edits]) => {
      let bytes = Buffer.from(c.bytes);
      for (const [at, value, op] of edits) {
        const i = at % (bytes.length + 1);
        if (op === 'set' && i < bytes.length) bytes[i] = value;
        else if (op === 'insert') bytes = Buffer.concat([bytes.subarray(0, i), Buffer.from([value]), bytes.subarray(i)]);
        else bytes = bytes.subarray(0, i);
      }
      return bytes;
    }),
);

describe('PROXY reader properties', () => {
  it('built headers parse back, at any split points, and leave the tail untouched', () => {
    fc.assert(
      fc.property(
        headerCase.chain((c) => fc.tuple(fc.constant(c), fc.uint8Array({ maxLength: 40 }))).chain(([c, tail]) =>
          fc.tuple(fc.constant(c), fc.constant(Buffer.from(tail)), cutsFor(c.bytes.length + tail.length)),
        ),
        fc.constantFrom<ProxyMode>('required', 'optional'),
        ([c, tail, cuts], mode) => {
          const bytes = Buffer.concat([c.bytes, tail]);
          const { result, fed } = readSplit(bytes, cuts, { mode, maxV2Payload: 0xffff });
          expect(result.state).toBe('done');
          if (result.state !== 'done') return;
          expect(result.header).toEqual(c.expected);
          expect(Buffer.concat([result.rest, bytes.subarray(fed)])).toEqual(tail);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('byte-at-a-time gives the verdict of one whole read, at the earliest byte', () => {
    fc.assert(
      fc.property(fuzzInput, fc.constantFrom<ProxyMode>('required', 'optional'), (bytes, mode) => {
        sameVerdict(readWhole(bytes, { mode }), readBytewise(bytes, { mode }), bytes);
      }),
      { numRuns: 5000 },
    );
  });

  it('fuzz: 50 000 random inputs at random splits never throw and always get a sane verdict', () => {
    fc.assert(
      fc.property(
        fuzzInput.chain((bytes) => fc.tuple(fc.constant(bytes), cutsFor(bytes.length))),
        fc.constantFrom<ProxyMode>('required', 'optional'),
        fc.constantFrom(0, 12, 216, 1536, 0xffff),
        ([bytes, cuts], mode, maxV2Payload) => {
          const { result, fed } = readSplit(bytes, cuts, { mode, maxV2Payload });
          expect(fed).toBeLessThanOrEqual(bytes.length);
          if (result.state === 'not-proxy') {
            expect(mode).toBe('optional');
            expect(result.rest).toEqual(bytes.subarray(0, fed));
          } else if (result.state === 'done') {
            expect(result.rest.length).toBeLessThanOrEqual(fed);
            expect(fed - result.rest.length).toBeLessThanOrEqual(result.header.version === 1 ? 107 : 16 + maxV2Payload);
          } else if (result.state === 'need-more') {
            expect(fed).toBe(bytes.length);
          } else {
            expect(result.reason.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 50_000 },
    );
  });
});
