import { describe, expect, it } from 'vitest';
import { buildProxyHeaderV1, buildProxyHeaderV2 } from '../../../src/listen/proxy-protocol-build.js';
import {
  crc32c, HAPROXY_TIMEOUT_MS, PP2_CLIENT, PP2_TYPE, PROXY_V1_MAX_LENGTH, PROXY_V2_DEFAULT_MAX_PAYLOAD,
  PROXY_V2_SIGNATURE, ProxyHeaderReader,
} from '../../../src/listen/proxy-protocol.js';
import { b, expectState, readBytewise, readWhole } from './proxy-helpers.js';

const FFFF6 = `${'ffff:'.repeat(7)}ffff`;

function v2(verCmd: number, fam: number, payload: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(payload.length);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, fam]), len, payload]);
}
const inet4Block = Buffer.from([192, 0, 2, 1, 198, 51, 100, 7, 0xc3, 0x50, 0x03, 0xe1]); // :50000 -> :993
const tlv = (type: number, value: Buffer): Buffer => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);

function rejected(bytes: Buffer, reason: RegExp, options?: ConstructorParameters<typeof ProxyHeaderReader>[0]): void {
  expect(expectState(readWhole(bytes, options), 'error').reason).toMatch(reason);
  expect(expectState(readBytewise(bytes, options).result, 'error').reason).toMatch(reason);
}

describe('constants', () => {
  it('match the spec and Dovecot', () => {
    expect(HAPROXY_TIMEOUT_MS).toBe(3000);
    expect(PROXY_V1_MAX_LENGTH).toBe(107);
    expect(PROXY_V2_SIGNATURE.toString('latin1')).toBe('\r\n\r\n\0\r\nQUIT\n');
  });
  it('crc32c matches the RFC 4960 check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32))).toBe(0x8a9136aa); // RFC 3720 B.4: 32 bytes of zeroes
  });
});

describe('v1', () => {
  it('TCP4 with the protocol bytes that follow', () => {
    const r = expectState(readWhole(b('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\na1 CAPABILITY\r\n')), 'done');
    expect(r.header).toEqual({
      version: 1, command: 'proxy', family: 'tcp4', tlvs: { raw: [] },
      source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 },
    });
    expect(r.rest.toString()).toBe('a1 CAPABILITY\r\n');
  });
  it('TCP6 addresses come back in canonical form', () => {
    const r = expectState(readWhole(b('PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::ffff:10.1.2.3 0 65535\r\n')), 'done');
    expect(r.header.family).toBe('tcp6');
    expect(r.header.source).toEqual({ address: '2001:db8::1', port: 0 });
    expect(r.header.destination).toEqual({ address: '::ffff:10.1.2.3', port: 65535 });
    expect(r.rest.length).toBe(0);
  });
  it('TCP6 at its longest (104 bytes)', () => {
    const line = `PROXY TCP6 ${FFFF6} ${FFFF6} 65535 65535\r\n`;
    expect(line.length).toBe(104);
    expect(expectState(readWhole(b(line)), 'done').header.source?.address).toBe(FFFF6);
  });
  it('UNKNOWN short form and worst-case long form (exactly 107 bytes)', () => {
    expect(expectState(readWhole(b('PROXY UNKNOWN\r\n')), 'done').header).toEqual({ version: 1, command: 'proxy', family: 'unknown', tlvs: { raw: [] } });
    const longest = `PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 65535\r\n`;
    expect(longest.length).toBe(107);
    const r = expectState(readBytewise(b(`${longest}x`)).result, 'done');
    expect(r.header.family).toBe('unknown');
    expect(r.header.source).toBeUndefined();
  });
  it('builder output parses back', () => {
    const h = buildProxyHeaderV1({ family: 'tcp6', source: { address: '2001:DB8::5', port: 1 }, destination: { address: '::1', port: 143 } });
    expect(h.toString()).toBe('PROXY TCP6 2001:db8::5 ::1 1 143\r\n');
    expect(expectState(readWhole(h), 'done').header.destination).toEqual({ address: '::1', port: 143 });
    expect(buildProxyHeaderV1({ family: 'unknown' }).toString()).toBe('PROXY UNKNOWN\r\n');
    expect(() => buildProxyHeaderV1({ family: 'tcp4', source: { address: '::1', port: 1 }, destination: { address: '1.2.3.4', port: 2 } })).toThrow(RangeError);
    expect(() => buildProxyHeaderV1({ family: 'tcp4', source: { address: '1.2.3.4', port: 65536 }, destination: { address: '1.2.3.4', port: 2 } })).toThrow(RangeError);
  });

  it('rejects a line longer than 107 bytes as soon as byte 107 is not LF', () => {
    const line = b(`PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 655350\r\n`);
    expect(line.length).toBe(108);
    const { result, fed } = readBytewise(line);
    expect(expectState(result, 'error').reason).toMatch(/107/);
    expect(fed).toBe(107);
    rejected(b(`PROXY TCP4 ${'1'.repeat(200)}`), /107/);
  });
  it.each([
    ['unknown family', 'PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n', /protocol/],
    ['lower-case family', 'PROXY tcp4 1.2.3.4 1.2.3.4 1 2\r\n', /protocol/],
    ['UDP', 'PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n', /protocol/],
    ['empty line', 'PROXY \r\n', /protocol/],
    ['UNKNOWN glued to text', 'PROXY UNKNOWNX\r\n', /protocol/],
    ['port above 65535', 'PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n', /port/],
    ['port with leading zero', 'PROXY TCP4 1.2.3.4 1.2.3.4 1 02\r\n', /port/],
    ['negative port', 'PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n', /port/],
    ['six-digit port', 'PROXY TCP4 1.2.3.4 1.2.3.4 100000 2\r\n', /port/],
    ['octet above 255', 'PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n', /address/],
    ['octet with leading zero', 'PROXY TCP4 1.2.3.04 1.2.3.4 1 2\r\n', /address/],
    ['short IPv4', 'PROXY TCP4 1.2.3 1.2.3.4 1 2\r\n', /address/],
    ['IPv6 under TCP4', 'PROXY TCP4 ::1 1.2.3.4 1 2\r\n', /address/],
    ['IPv4 under TCP6', 'PROXY TCP6 ::1 1.2.3.4 1 2\r\n', /address/],
    ['IPv6 with zone id', 'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', /address/],
    ['two double colons', 'PROXY TCP6 1::2::3 ::1 1 2\r\n', /address/],
    ['double space', 'PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n', /fields|address/],
    ['trailing space', 'PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n', /fields/],
    ['missing port', 'PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n', /fields/],
    ['LF without CR', 'PROXY UNKNOWN\n', /LF without CR/],
    ['CR without LF', 'PROXY UNKNOWN\rX\r\n', /CR without LF/],
    ['NUL byte', 'PROXY TCP4 1.2.3.4\0 1.2.3.4 1 2\r\n', /printable/],
    ['tab', 'PROXY TCP4\t1.2.3.4 1.2.3.4 1 2\r\n', /printable/],
    ['8-bit byte', 'PROXY UNKNOWN \xe9\r\n', /printable/],
  ])('rejects %s', (_name, line, reason) => rejected(b(line), reason));
});

describe('v2', () => {
  it('PROXY over INET with SSL (CN), AUTHORITY, ALPN, UNIQUE_ID, NOOP, custom TLVs and CRC32C', () => {
    const header = buildProxyHeaderV2({
      family: 'tcp4', source: { address: '203.0.113.9', port: 50000 }, destination: { address: '198.51.100.7', port: 993 },
      tlvs: {
        alpn: 'imap', authority: 'mail.example.org', uniqueId: Buffer.from('conn-42'),
        ssl: { client: PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN, verify: 0, version: 'TLSv1.3', cn: 'Ünïcode Client', cipher: 'TLS_AES_256_GCM_SHA384', sigAlg: 'RSA-SHA256', keyAlg: 'RSA2048' },
        raw: [{ type: 0xe0, value: Buffer.from([1, 2, 3]) }, { type: PP2_TYPE.NETNS, value: Buffer.from('blue') }],
        noop: 5, crc32c: true,
      },
    });
    const r = expectState(readWhole(Buffer.concat([header, b('a1 ID NIL\r\n')])), 'done');
    expect(r.rest.toString()).toBe('a1 ID NIL\r\n');
    const bytewise = readBytewise(Buffer.concat([header, b('a1 ID NIL\r\n')]));
    expect(bytewise.fed).toBe(header.length);
    expect(expectState(bytewise.result, 'done').header).toEqual(r.header);
    expect(r.header).toEqual({
      version: 2, command: 'proxy', family: 'tcp4',
      source: { address: '203.0.113.9', port: 50000 }, destination: { address: '198.51.100.7', port: 993 },
      tlvs: {
        alpn: 'imap', authority: 'mail.example.org', uniqueId: Buffer.from('conn-42'),
        ssl: { client: 3, verify: 0, verified: true, version: 'TLSv1.3', cn: 'Ünïcode Client', cipher: 'TLS_AES_256_GCM_SHA384', sigAlg: 'RSA-SHA256', keyAlg: 'RSA2048' },
        raw: [{ type: 0xe0, value: Buffer.from([1, 2, 3]) }, { type: 0x30, value: Buffer.from('blue') }],
      },
    });
  });
  it('PROXY over INET6', () => {
    const h = buildProxyHeaderV2({ family: 'tcp6', source: { address: '2001:db8::2', port: 1 }, destination: { address: '::ffff:192.0.2.1', port: 110 } });
    expect(h[13]).toBe(0x21);
    expect(h.readUInt16BE(14)).toBe(36);
    const r = expectState(readWhole(h), 'done');
    expect(r.header.source).toEqual({ address: '2001:db8::2', port: 1 });
    expect(r.header.destination).toEqual({ address: '::ffff:192.0.2.1', port: 110 });
  });
  it('PROXY over UNIX with an AUTHORITY', () => {
    const h = buildProxyHeaderV2({ family: 'unix', source: { address: '/run/haproxy/a.sock', port: 0 }, destination: { address: '/run/portier/imap', port: 0 }, tlvs: { authority: 'imap.example.com' } });
    expect(h.readUInt16BE(14)).toBe(216 + 3 + 16);
    const r = expectState(readWhole(h), 'done');
    expect(r.header.family).toBe('unix');
    expect(r.header.source).toEqual({ address: '/run/haproxy/a.sock', port: 0 });
    expect(r.header.destination).toEqual({ address: '/run/portier/imap', port: 0 });
    expect(r.header.tlvs.authority).toBe('imap.example.com');
  });
  it('LOCAL (health check): addresses and family are ignored', () => {
    const bare = expectState(readWhole(buildProxyHeaderV2({ command: 'local', family: 'unknown' })), 'done');
    expect(bare.header).toEqual({ version: 2, command: 'local', family: 'unknown', tlvs: { raw: [] } });
    const withAddr = buildProxyHeaderV2({ command: 'local', family: 'tcp4', source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } });
    const r = expectState(readWhole(Buffer.concat([withAddr, b('+OK')])), 'done');
    expect(r.header.command).toBe('local');
    expect(r.header.source).toBeUndefined();
    expect(r.rest.toString()).toBe('+OK');
  });
  it('PROXY with AF_UNSPEC, or over DGRAM, falls back to the real endpoints', () => {
    expect(expectState(readWhole(v2(0x21, 0x00, Buffer.from('ignored'))), 'done').header.family).toBe('unknown');
    const dgram = expectState(readWhole(v2(0x21, 0x12, Buffer.concat([inet4Block, tlv(PP2_TYPE.AUTHORITY, b('x'))]))), 'done');
    expect(dgram.header.family).toBe('unknown');
    expect(dgram.header.source).toBeUndefined();
    expect(dgram.header.tlvs.authority).toBe('x');
  });
  it('SSL "verified" needs a certificate flag as well as verify == 0', () => {
    const ssl = (client: number, verify: number): unknown =>
      expectState(readWhole(buildProxyHeaderV2({ family: 'tcp4', source: { address: '1.1.1.1', port: 1 }, destination: { address: '2.2.2.2', port: 2 }, tlvs: { ssl: { client, verify } } })), 'done').header.tlvs.ssl;
    expect(ssl(PP2_CLIENT.SSL, 0)).toEqual({ client: 1, verify: 0, verified: false });
    expect(ssl(PP2_CLIENT.SSL | PP2_CLIENT.CERT_SESS, 0)).toMatchObject({ verified: true });
    expect(ssl(PP2_CLIENT.SSL | PP2_CLIENT.CERT_CONN, 20)).toMatchObject({ verified: false, verify: 20 });
  });
  it('accepts a length exactly at the cap, and a configured cap', () => {
    const atCap = v2(0x21, 0x11, Buffer.concat([inet4Block, tlv(PP2_TYPE.NOOP, Buffer.alloc(PROXY_V2_DEFAULT_MAX_PAYLOAD - 15))]));
    expect(atCap.readUInt16BE(14)).toBe(PROXY_V2_DEFAULT_MAX_PAYLOAD);
    expect(readWhole(atCap).state).toBe('done');
    expect(readWhole(v2(0x21, 0x11, inet4Block), { maxV2Payload: 12 }).state).toBe('done');
    expect(() => new ProxyHeaderReader({ maxV2Payload: 70000 })).toThrow(RangeError);
  });

  it('rejects a wrong version on byte 13', () => {
    for (const verCmd of [0x11, 0x31, 0x01]) {
      const { result, fed } = readBytewise(v2(verCmd, 0x11, inet4Block));
      expect(expectState(result, 'error').reason).toMatch(/version/);
      expect(fed).toBe(13);
    }
  });
  it('rejects unknown commands, families and transports', () => {
    rejected(v2(0x22, 0x11, inet4Block), /command/);
    rejected(v2(0x2f, 0x11, inet4Block), /command/);
    rejected(v2(0x21, 0x41, inet4Block), /family/);
    rejected(v2(0x21, 0x13, inet4Block), /family/);
  });
  it('rejects a length over the cap on byte 16, before the body arrives', () => {
    const over = v2(0x21, 0x11, Buffer.alloc(PROXY_V2_DEFAULT_MAX_PAYLOAD + 1));
    const { result, fed } = readBytewise(over);
    expect(expectState(result, 'error').reason).toMatch(/exceeds the cap/);
    expect(fed).toBe(16);
    rejected(v2(0x21, 0x11, Buffer.alloc(0xffff)), /cap/);
    rejected(v2(0x21, 0x31, Buffer.alloc(216)), /cap of 200/, { maxV2Payload: 200 });
  });
  it('rejects a length shorter than the address block', () => {
    rejected(v2(0x21, 0x11, inet4Block.subarray(0, 11)), /address block/);
    rejected(v2(0x21, 0x21, Buffer.alloc(35)), /address block/);
    rejected(v2(0x21, 0x31, Buffer.alloc(215)), /address block/);
  });
  it.each([
    ['a TLV overrunning the length', tlv(PP2_TYPE.AUTHORITY, b('abc')).subarray(0, 5), /overruns/],
    ['a truncated TLV header', Buffer.from([0x02, 0x00]), /truncated/],
    ['a CRC32C of the wrong size', tlv(PP2_TYPE.CRC32C, Buffer.alloc(3)), /4 bytes/],
    ['two AUTHORITY TLVs', Buffer.concat([tlv(2, b('a')), tlv(2, b('b'))]), /duplicate AUTHORITY/],
    ['two SSL TLVs', Buffer.concat([tlv(0x20, Buffer.alloc(5)), tlv(0x20, Buffer.alloc(5))]), /duplicate SSL/],
    ['an AUTHORITY that is not UTF-8', tlv(2, Buffer.from([0xc3, 0x28])), /UTF-8/],
    ['an AUTHORITY with a CR LF', tlv(2, b('a\r\nb')), /control/],
    ['a UNIQUE_ID over 128 bytes', tlv(PP2_TYPE.UNIQUE_ID, Buffer.alloc(129)), /UNIQUE_ID/],
    ['an SSL TLV shorter than 5 bytes', tlv(0x20, Buffer.alloc(4)), /shorter/],
    ['an SSL sub-TLV overrunning the SSL TLV', tlv(0x20, Buffer.concat([Buffer.alloc(5), Buffer.from([0x22, 0, 9]), b('cn')])), /SSL sub-TLV 0x22 overruns the SSL TLV/],
    ['a duplicate SSL sub-TLV', tlv(0x20, Buffer.concat([Buffer.alloc(5), tlv(0x22, b('a')), tlv(0x22, b('b'))])), /duplicate SSL sub-TLV/],
  ])('rejects %s', (_name, tlvs, reason) => rejected(v2(0x21, 0x11, Buffer.concat([inet4Block, tlvs])), reason));

  it('verifies CRC32C and rejects a mismatch', () => {
    const good = buildProxyHeaderV2({ family: 'tcp4', source: { address: '1.1.1.1', port: 1 }, destination: { address: '2.2.2.2', port: 2 }, tlvs: { authority: 'a.example', crc32c: true } });
    expect(readWhole(good).state).toBe('done');
    const flippedCrc = Buffer.from(good);
    flippedCrc[flippedCrc.length - 1] = (flippedCrc.at(-1) ?? 0) ^ 1;
    rejected(flippedCrc, /CRC32C mismatch/);
    const flippedPort = Buffer.from(good);
    flippedPort[25] = (flippedPort[25] ?? 0) ^ 0x80;
    rejected(flippedPort, /CRC32C mismatch/);
  });
});

describe('modes and decisions', () => {
  it.each([
    ['IMAP', 'a1 LOGIN user pass\r\n'],
    ['POP3', 'USER bob\r\n'],
    ['LMTP', 'LHLO mx.example.com\r\n'],
    ['TLS ClientHello', '\x16\x03\x01\x02\x00\x01'],
  ])('optional mode: %s is not-proxy after its first byte, bytes untouched', (_name, text) => {
    const { result, fed } = readBytewise(b(text), { mode: 'optional' });
    expect(fed).toBe(1);
    expect(expectState(result, 'not-proxy').rest).toEqual(b(text.slice(0, 1)));
    expect(expectState(readWhole(b(text), { mode: 'optional' }), 'not-proxy').rest).toEqual(b(text));
    expect(expectState(readWhole(b(text)), 'error').reason).toMatch(/not a PROXY/);
  });
  it('optional mode waits while the bytes are a signature prefix, then decides', () => {
    const { result, fed } = readBytewise(b('PROXYZ LOGIN'), { mode: 'optional' });
    expect(fed).toBe(6);
    expect(expectState(result, 'not-proxy').rest.toString()).toBe('PROXYZ');
    const v2ish = readBytewise(b('\r\n\r\n\0\r\nQUIX\n'), { mode: 'optional' });
    expect(v2ish.fed).toBe(11);
    expect(v2ish.result.state).toBe('not-proxy');
  });
  it('optional mode: once a full signature is seen, garbage is an error', () => {
    rejected(b('PROXY TCP4 garbage\r\n'), /address|fields/, { mode: 'optional' });
    rejected(v2(0x11, 0x11, inet4Block), /version/, { mode: 'optional' });
  });
  it('optional mode still parses headers', () => {
    expect(readWhole(b('PROXY UNKNOWN\r\n'), { mode: 'optional' }).state).toBe('done');
  });
  it('expire(): silence or a partial signature is direct in optional mode, an error otherwise', () => {
    const silent = new ProxyHeaderReader({ mode: 'optional' });
    expect(expectState(silent.expire(), 'not-proxy').rest.length).toBe(0);
    const crlf = new ProxyHeaderReader({ mode: 'optional' });
    expect(crlf.push(b('\r\n')).state).toBe('need-more');
    expect(expectState(crlf.expire(), 'not-proxy').rest.toString()).toBe('\r\n');
    const committed = new ProxyHeaderReader({ mode: 'optional' });
    expect(committed.push(b('PROXY TCP4 1.2')).state).toBe('need-more');
    expect(expectState(committed.expire(), 'error').reason).toMatch(/timeout/);
    expect(expectState(new ProxyHeaderReader().expire(), 'error').reason).toMatch(/timeout/);
  });
  it('the reader is spent after a verdict; plain Uint8Array chunks are fine', () => {
    const r = new ProxyHeaderReader();
    expect(r.push(new Uint8Array(b('PROXY UNKNOWN\r\nX'))).state).toBe('done');
    expect(() => r.push(b('more'))).toThrow(/after a verdict/);
    expect(() => r.expire()).toThrow(/after a verdict/);
    expect(new ProxyHeaderReader().push(Buffer.alloc(0)).state).toBe('need-more');
  });
});
