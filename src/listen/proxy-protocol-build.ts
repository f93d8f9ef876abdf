/**
 * PROXY protocol v1/v2 header builders (haproxy doc/proxy-protocol.txt §2.1, §2.2): for tests
 * and for sending PROXY to a backend. Valid input yields a header `ProxyHeaderReader` accepts
 * (given a v2 cap large enough); `raw` TLVs are sent as given, which tests use to craft bad ones.
 */
import { canonicalIPv6, ipv6ToBytes, isStrictIPv4 } from './netmatch.js';
import {
  crc32c, PP2_TYPE, PROXY_V2_SIGNATURE, SSL_FIELDS, UNIX_ADDR_LENGTH,
  type ProxyEndpoint, type ProxyFamily,
} from './proxy-protocol.js';

export interface ProxyHeaderV1Input { family: 'tcp4' | 'tcp6' | 'unknown'; source?: ProxyEndpoint; destination?: ProxyEndpoint }
export interface ProxyTlvsInput {
  alpn?: string;
  authority?: string;
  uniqueId?: Uint8Array;
  ssl?: { client: number; verify?: number; version?: string; cn?: string; cipher?: string; sigAlg?: string; keyAlg?: string };
  /** Sent verbatim after the typed TLVs, in order. */
  raw?: readonly { type: number; value: Uint8Array }[];
  /** Size of a NOOP padding value to add (§2.2.4). */
  noop?: number;
  /** Append a CRC32C TLV (last) and fill it in (§2.2.3). */
  crc32c?: boolean;
}
export interface ProxyHeaderV2Input {
  command?: 'proxy' | 'local';
  /** `unknown` sends AF_UNSPEC with no address block. */
  family: ProxyFamily;
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  tlvs?: ProxyTlvsInput;
}

/** §2.1 line. Throws RangeError for input a strict receiver (this module) would reject. */
export function buildProxyHeaderV1(input: ProxyHeaderV1Input): Buffer {
  if (input.family === 'unknown') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const [src, dst] = endpoints(input);
  const text = (e: ProxyEndpoint): string =>
    (input.family === 'tcp4' ? (isStrictIPv4(e.address) ? e.address : undefined) : canonicalIPv6(e.address)) ??
    bad(`${e.address} is not a ${input.family} address`);
  return Buffer.from(`PROXY ${input.family.toUpperCase()} ${text(src)} ${text(dst)} ${src.port} ${dst.port}\r\n`, 'latin1');
}

/** §2.2 binary header with TLVs. Throws RangeError for unencodable input. */
export function buildProxyHeaderV2(input: ProxyHeaderV2Input): Buffer {
  const parts: Buffer[] = [];
  let fam = 0x00;
  if (input.family !== 'unknown') {
    const [src, dst] = endpoints(input);
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(src.port, 0);
    ports.writeUInt16BE(dst.port, 2);
    if (input.family === 'tcp4') {
      fam = 0x11;
      const v4 = (e: ProxyEndpoint): Buffer =>
        isStrictIPv4(e.address) ? Buffer.from(e.address.split('.').map(Number)) : bad(`${e.address} is not an IPv4 address`);
      parts.push(v4(src), v4(dst), ports);
    } else if (input.family === 'tcp6') {
      fam = 0x21;
      const v6 = (e: ProxyEndpoint): Buffer =>
        canonicalIPv6(e.address) === undefined ? bad(`${e.address} is not an IPv6 address`) : ipv6ToBytes(e.address);
      parts.push(v6(src), v6(dst), ports);
    } else {
      fam = 0x31;
      for (const e of [src, dst]) {
        const path = Buffer.alloc(UNIX_ADDR_LENGTH);
        if (path.write(e.address, 'utf8') < Buffer.byteLength(e.address)) bad(`unix path longer than ${UNIX_ADDR_LENGTH} bytes`);
        parts.push(path);
      }
    }
  }
  const t = input.tlvs ?? {};
  const tlv = (type: number, value: Uint8Array): void => void parts.push(tlvBytes(type, value));
  if (t.alpn !== undefined) tlv(PP2_TYPE.ALPN, Buffer.from(t.alpn, 'utf8'));
  if (t.authority !== undefined) tlv(PP2_TYPE.AUTHORITY, Buffer.from(t.authority, 'utf8'));
  if (t.uniqueId !== undefined) tlv(PP2_TYPE.UNIQUE_ID, t.uniqueId);
  if (t.ssl !== undefined) {
    // §2.2.6: client (1 byte), verify (4 bytes), then sub-TLVs.
    const head = Buffer.alloc(5);
    head[0] = t.ssl.client;
    head.writeUInt32BE(t.ssl.verify ?? 0, 1);
    const subs: Buffer[] = [head];
    for (const [type, field] of Object.entries(SSL_FIELDS)) {
      const v = field === undefined ? undefined : t.ssl[field];
      if (v !== undefined) subs.push(tlvBytes(Number(type), Buffer.from(v, 'utf8')));
    }
    tlv(PP2_TYPE.SSL, Buffer.concat(subs));
  }
  for (const r of t.raw ?? []) tlv(r.type, r.value);
  if (t.noop !== undefined) tlv(PP2_TYPE.NOOP, Buffer.alloc(t.noop));
  if (t.crc32c === true) tlv(PP2_TYPE.CRC32C, Buffer.alloc(4));
  const payload = Buffer.concat(parts);
  if (payload.length > 0xffff) bad(`v2 payload of ${payload.length} bytes exceeds 65535`);
  const fixed = Buffer.from([...PROXY_V2_SIGNATURE, input.command === 'local' ? 0x20 : 0x21, fam, payload.length >> 8, payload.length & 0xff]);
  const out = Buffer.concat([fixed, payload]);
  if (t.crc32c === true) out.writeUInt32BE(crc32c(out), out.length - 4);
  return out;
}

function endpoints(input: { source?: ProxyEndpoint; destination?: ProxyEndpoint }): [ProxyEndpoint, ProxyEndpoint] {
  const { source, destination } = input;
  if (source === undefined || destination === undefined) bad('source and destination are required');
  for (const e of [source, destination]) if (!Number.isInteger(e.port) || e.port < 0 || e.port > 0xffff) bad(`port ${e.port} is not 0..65535`);
  return [source, destination];
}

function tlvBytes(type: number, value: Uint8Array): Buffer {
  if (value.length > 0xffff) bad(`TLV ${type} value longer than 65535 bytes`);
  return Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]);
}

function bad(message: string): never {
  throw new RangeError(message);
}
