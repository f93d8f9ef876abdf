/**
 * HAProxy PROXY protocol v1/v2 header reader, without sockets (builders: ./proxy-protocol-build.ts).
 * Spec: haproxy doc/proxy-protocol.txt (2020/03/05); section numbers below refer to it.
 * The caller owns the socket, the timeout (HAPROXY_TIMEOUT_MS) and the trust decision:
 * only peers in `haproxy_trusted_networks` may be read with this at all (§5).
 */
import { canonicalIPv6, ipv6FromBytes, isStrictIPv4 } from './netmatch.js';

/** Dovecot's `haproxy_timeout`; §2 asks for "at least 3 seconds to cover a TCP retransmit". */
export const HAPROXY_TIMEOUT_MS = 3_000;
/** §2.1: the longest v1 line, CRLF included ("PROXY UNKNOWN" + two IPv6 + ports). */
export const PROXY_V1_MAX_LENGTH = 107;
/** §2.2: fixed part of a v2 header (signature, ver/cmd, fam, len). */
export const PROXY_V2_FIXED_LENGTH = 16;
/** Default cap on the v2 length field (addresses + TLVs); the field itself allows 65535. */
export const PROXY_V2_DEFAULT_MAX_PAYLOAD = 1536;
/** §2.2: the 12-byte v2 signature `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1');

/** §2.2 registered TLV types. */
export const PP2_TYPE = { ALPN: 0x01, AUTHORITY: 0x02, CRC32C: 0x03, NOOP: 0x04, UNIQUE_ID: 0x05, SSL: 0x20, NETNS: 0x30 } as const;
/** §2.2.6 sub-TLVs inside PP2_TYPE_SSL. */
export const PP2_SUBTYPE_SSL = { VERSION: 0x21, CN: 0x22, CIPHER: 0x23, SIG_ALG: 0x24, KEY_ALG: 0x25 } as const;
/** §2.2.6 bits of the SSL TLV `client` field. */
export const PP2_CLIENT = { SSL: 0x01, CERT_CONN: 0x02, CERT_SESS: 0x04 } as const;
const UNIQUE_ID_MAX = 128; // §2.2.5
/** §2.2: each AF_UNIX address is 108 bytes, NUL-padded. */
export const UNIX_ADDR_LENGTH = 108;

export type ProxyMode = 'required' | 'optional';
export type ProxyFamily = 'tcp4' | 'tcp6' | 'unix' | 'unknown';
/** For `unix` the address is the socket path and the port is 0. */
export interface ProxyEndpoint { address: string; port: number }
export interface ProxyRawTlv { type: number; value: Buffer }
/**
 * §2.2.6. `client` holds PP2_CLIENT bits, `verify` the raw result; `verified` means a client
 * certificate was presented (CERT_CONN or CERT_SESS) and verify is 0.
 */
export interface ProxySslInfo {
  client: number;
  verify: number;
  verified: boolean;
  version?: string; cn?: string; cipher?: string; sigAlg?: string; keyAlg?: string;
}
export interface ProxyTlvs {
  alpn?: string;
  /** SNI host name the client sent to the proxy (§2.2.2). */
  authority?: string;
  uniqueId?: Buffer;
  ssl?: ProxySslInfo;
  /** Types this module does not interpret (NETNS, custom 0xE0-0xEF, ...), in order. */
  raw: ProxyRawTlv[];
}
/**
 * `local` (health check) and family `unknown` carry no addresses: the caller uses the real
 * peer (§2.1 UNKNOWN, §2.2 LOCAL / AF_UNSPEC / DGRAM fall back to the real endpoints).
 */
export interface ProxyHeader {
  version: 1 | 2;
  command: 'proxy' | 'local';
  family: ProxyFamily;
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  tlvs: ProxyTlvs;
}
export type ProxyParse =
  | { state: 'need-more' }
  | { state: 'done'; header: ProxyHeader; /** bytes after the header; they belong to the protocol */ rest: Buffer }
  | { state: 'error'; /** for logs, never for the client */ reason: string }
  | { state: 'not-proxy'; /** all bytes so far, untouched */ rest: Buffer };

export interface ProxyReaderOptions {
  /** `required`: anything else is an error. `optional`: a direct client is `not-proxy`. */
  mode?: ProxyMode;
  /** Largest accepted v2 length field (bytes after the fixed 16); 0..65535. */
  maxV2Payload?: number;
}

class HeaderError extends Error {}
function fail(reason: string): never {
  throw new HeaderError(reason);
}

type Phase = 'detect' | 'v1-sig' | 'v2-sig' | 'v1-line' | 'v2-head' | 'v2-body' | 'finished';
const NEED_MORE: ProxyParse = Object.freeze({ state: 'need-more' });
const EMPTY = Buffer.alloc(0);

/**
 * Incremental reader for one connection. Every byte is judged as it arrives, so a header
 * fed one byte at a time gets the same verdict as one read whole, and memory is bounded
 * by the header limits. After a verdict the reader is spent.
 */
export class ProxyHeaderReader {
  readonly mode: ProxyMode;
  readonly #maxV2Payload: number;
  #buf: Buffer = EMPTY;
  #scanned = 0;
  #phase: Phase = 'detect';
  #v2Total = 0;

  constructor(options: ProxyReaderOptions = {}) {
    this.mode = options.mode ?? 'required';
    const max = options.maxV2Payload ?? PROXY_V2_DEFAULT_MAX_PAYLOAD;
    if (!Number.isInteger(max) || max < 0 || max > 0xffff) throw new RangeError(`maxV2Payload must be 0..65535, got ${max}`);
    this.#maxV2Payload = max;
  }

  push(chunk: Uint8Array): ProxyParse {
    if (this.#phase === 'finished') throw new Error('ProxyHeaderReader.push() after a verdict');
    if (chunk.length === 0) return NEED_MORE;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#buf = this.#buf.length === 0 ? bytes : Buffer.concat([this.#buf, bytes]);
    try {
      return this.#advance();
    } catch (err) {
      if (!(err instanceof HeaderError)) throw err;
      return this.#finish({ state: 'error', reason: err.message });
    }
  }

  /**
   * The caller's timer fired. In optional mode, silence or a partial signature means a
   * direct client (server-speaks-first protocols send nothing before the greeting).
   */
  expire(): ProxyParse {
    if (this.#phase === 'finished') throw new Error('ProxyHeaderReader.expire() after a verdict');
    const inSignature = this.#phase === 'detect' || this.#phase === 'v1-sig' || this.#phase === 'v2-sig';
    if (inSignature && this.mode === 'optional') return this.#finish({ state: 'not-proxy', rest: this.#buf });
    return this.#finish({ state: 'error', reason: `timeout waiting for PROXY header (${this.#buf.length} bytes received)` });
  }

  #finish(result: ProxyParse): ProxyParse {
    this.#phase = 'finished';
    this.#buf = EMPTY;
    return result;
  }

  #notProxy(): ProxyParse {
    if (this.mode === 'required') fail('not a PROXY protocol header');
    return this.#finish({ state: 'not-proxy', rest: this.#buf });
  }

  #done(header: ProxyHeader, end: number): ProxyParse {
    return this.#finish({ state: 'done', header, rest: this.#buf.subarray(end) });
  }

  #advance(): ProxyParse {
    const buf = this.#buf;
    if (this.#phase === 'v2-body') return this.#v2Body();
    for (; this.#scanned < buf.length; this.#scanned++) {
      const i = this.#scanned;
      const b = buf[i] ?? 0;
      switch (this.#phase) {
        case 'detect':
          if (b === V1_SIGNATURE[0]) this.#phase = 'v1-sig';
          else if (b === PROXY_V2_SIGNATURE[0]) this.#phase = 'v2-sig';
          else return this.#notProxy();
          break;
        case 'v1-sig':
          if (b !== V1_SIGNATURE[i]) return this.#notProxy();
          if (i === V1_SIGNATURE.length - 1) this.#phase = 'v1-line';
          break;
        case 'v2-sig':
          if (b !== PROXY_V2_SIGNATURE[i]) return this.#notProxy();
          if (i === PROXY_V2_SIGNATURE.length - 1) this.#phase = 'v2-head';
          break;
        case 'v1-line': {
          // §2.1: CRLF within 107 bytes, no lone CR or LF, US-ASCII text.
          const prevCr = buf[i - 1] === 0x0d;
          if (b === 0x0a) {
            if (!prevCr) fail('v1: LF without CR');
            return this.#done(parseV1(buf.toString('latin1', V1_SIGNATURE.length, i - 1)), i + 1);
          }
          if (prevCr) fail('v1: CR without LF');
          if (i >= PROXY_V1_MAX_LENGTH - 1) fail(`v1: no CRLF within ${PROXY_V1_MAX_LENGTH} bytes`);
          if (b !== 0x0d && (b < 0x20 || b > 0x7e)) fail(`v1: byte 0x${hex(b)} is not printable US-ASCII`);
          break;
        }
        case 'v2-head':
          this.#v2HeadByte(buf, i, b);
          if (i === PROXY_V2_FIXED_LENGTH - 1) {
            this.#phase = 'v2-body';
            this.#scanned = i + 1;
            return this.#v2Body();
          }
          break;
        default:
          throw new Error(`unreachable phase ${this.#phase}`);
      }
    }
    return NEED_MORE;
  }

  // §2.2: version nibble must be 2, command LOCAL/PROXY, family <= AF_UNIX, transport <= DGRAM.
  #v2HeadByte(buf: Buffer, i: number, b: number): void {
    if (i === 12) {
      if (b >> 4 !== 2) fail(`v2: version ${b >> 4} is not 2`);
      if ((b & 0x0f) > 1) fail(`v2: unknown command 0x${hex(b & 0x0f)}`);
    } else if (i === 13) {
      if (b >> 4 > 3 || (b & 0x0f) > 2) fail(`v2: invalid family/transport byte 0x${hex(b)}`);
    } else if (i === 15) {
      const len = buf.readUInt16BE(14);
      if (len > this.#maxV2Payload) fail(`v2: length ${len} exceeds the cap of ${this.#maxV2Payload}`);
      const need = (buf[12] ?? 0) === 0x21 ? v2AddressLength(buf[13] ?? 0) : 0;
      if (len < need) fail(`v2: length ${len} is shorter than the ${need}-byte address block`);
      this.#v2Total = PROXY_V2_FIXED_LENGTH + len;
    }
  }

  #v2Body(): ProxyParse {
    if (this.#buf.length < this.#v2Total) {
      this.#scanned = this.#buf.length;
      return NEED_MORE;
    }
    return this.#done(parseV2(this.#buf.subarray(0, this.#v2Total)), this.#v2Total);
  }
}

/** Address block length for a v2 family/transport byte, 0 when addresses are unspecified. */
function v2AddressLength(fam: number): number {
  if ((fam & 0x0f) === 0) return 0;
  return [0, 12, 36, 2 * UNIX_ADDR_LENGTH][fam >> 4] ?? 0;
}

const V1_PORT = /^(?:0|[1-9][0-9]{0,4})$/;

// §2.1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF, or "UNKNOWN" + anything.
function parseV1(line: string): ProxyHeader {
  if (line === 'UNKNOWN' || line.startsWith('UNKNOWN ')) return { version: 1, command: 'proxy', family: 'unknown', tlvs: { raw: [] } };
  const parts = line.split(' ');
  const [proto = '', src = '', dst = '', sport = '', dport = ''] = parts;
  if (proto !== 'TCP4' && proto !== 'TCP6') fail(`v1: unknown protocol ${JSON.stringify(proto.slice(0, 16))}`);
  if (parts.length !== 5) fail('v1: expected 4 fields after the protocol');
  const addr = (text: string, what: string): string => {
    const a = proto === 'TCP4' ? (isStrictIPv4(text) ? text : undefined) : canonicalIPv6(text);
    return a ?? fail(`v1: ${what} address is not a valid ${proto === 'TCP4' ? 'IPv4' : 'IPv6'} address`);
  };
  const port = (text: string, what: string): number => {
    if (!V1_PORT.test(text) || Number(text) > 0xffff) fail(`v1: ${what} port is not 0..65535 without leading zeros`);
    return Number(text);
  };
  const source = { address: addr(src, 'source'), port: port(sport, 'source') };
  const destination = { address: addr(dst, 'destination'), port: port(dport, 'destination') };
  return { version: 1, command: 'proxy', family: proto === 'TCP4' ? 'tcp4' : 'tcp6', source, destination, tlvs: { raw: [] } };
}

/** `h` is the whole header, whose fixed part was validated byte by byte. */
function parseV2(h: Buffer): ProxyHeader {
  // §2.2: LOCAL means "use the real endpoints and discard the protocol block".
  if (((h[12] ?? 0) & 0x0f) === 0) return { version: 2, command: 'local', family: 'unknown', tlvs: { raw: [] } };
  const fam = h[13] ?? 0;
  const addrLen = v2AddressLength(fam);
  // AF_UNSPEC / UNSPEC transport: the block's layout is unknown, so it is skipped whole.
  if (addrLen === 0) return { version: 2, command: 'proxy', family: 'unknown', tlvs: { raw: [] } };
  const tlvs = parseTlvs(h, PROXY_V2_FIXED_LENGTH + addrLen);
  // DGRAM (UDP) makes no sense for a TCP listener: fall back to the real endpoints.
  if ((fam & 0x0f) !== 1) return { version: 2, command: 'proxy', family: 'unknown', tlvs };
  const a = PROXY_V2_FIXED_LENGTH;
  const header = (family: ProxyFamily, source: ProxyEndpoint, destination: ProxyEndpoint): ProxyHeader =>
    ({ version: 2, command: 'proxy', family, source, destination, tlvs });
  switch (fam >> 4) {
    case 1:
      return header('tcp4', { address: h.subarray(a, a + 4).join('.'), port: h.readUInt16BE(a + 8) },
        { address: h.subarray(a + 4, a + 8).join('.'), port: h.readUInt16BE(a + 10) });
    case 2:
      return header('tcp6', { address: ipv6FromBytes(h.subarray(a, a + 16)), port: h.readUInt16BE(a + 32) },
        { address: ipv6FromBytes(h.subarray(a + 16, a + 32)), port: h.readUInt16BE(a + 34) });
    default:
      return header('unix', { address: unixPath(h.subarray(a, a + UNIX_ADDR_LENGTH)), port: 0 },
        { address: unixPath(h.subarray(a + UNIX_ADDR_LENGTH, a + 2 * UNIX_ADDR_LENGTH)), port: 0 });
  }
}

function unixPath(raw: Buffer): string {
  const nul = raw.indexOf(0);
  return raw.toString('utf8', 0, nul < 0 ? raw.length : nul);
}

/** Walk TLVs in h[start..]: each must lie wholly inside the header (§2.2). */
function* walkTlvs(h: Buffer, start: number, kind: '' | 'SSL sub-'): Generator<[number, Buffer, number]> {
  for (let p = start; p < h.length; ) {
    if (h.length - p < 3) fail(`v2: truncated ${kind}TLV header`);
    const type = h[p] ?? 0;
    const end = p + 3 + h.readUInt16BE(p + 1);
    if (end > h.length) fail(`v2: ${kind}TLV 0x${hex(type)} overruns ${kind === '' ? 'the header length' : 'the SSL TLV'}`);
    yield [type, h.subarray(p + 3, end), p + 3];
    p = end;
  }
}

function parseTlvs(h: Buffer, start: number): ProxyTlvs {
  const tlvs: ProxyTlvs = { raw: [] };
  let crcAt = -1;
  for (const [type, value, at] of walkTlvs(h, start, '')) {
    switch (type) {
      case PP2_TYPE.ALPN:
        unique(tlvs.alpn, 'ALPN');
        tlvs.alpn = text(value, 'ALPN');
        break;
      case PP2_TYPE.AUTHORITY:
        unique(tlvs.authority, 'AUTHORITY');
        tlvs.authority = text(value, 'AUTHORITY');
        break;
      case PP2_TYPE.CRC32C: // §2.2.3
        if (value.length !== 4) fail('v2: CRC32C TLV must be 4 bytes');
        if (crcAt >= 0) fail('v2: duplicate CRC32C TLV');
        crcAt = at;
        break;
      case PP2_TYPE.NOOP: // §2.2.4: padding
        break;
      case PP2_TYPE.UNIQUE_ID: // §2.2.5
        if (value.length > UNIQUE_ID_MAX) fail(`v2: UNIQUE_ID longer than ${UNIQUE_ID_MAX} bytes`);
        unique(tlvs.uniqueId, 'UNIQUE_ID');
        tlvs.uniqueId = Buffer.from(value);
        break;
      case PP2_TYPE.SSL:
        unique(tlvs.ssl, 'SSL');
        tlvs.ssl = parseSsl(value);
        break;
      default: // copied: the header must not pin the connection's first read buffer
        tlvs.raw.push({ type, value: Buffer.from(value) });
    }
  }
  if (crcAt >= 0) {
    const zeroed = Buffer.from(h);
    zeroed.fill(0, crcAt, crcAt + 4);
    if (crc32c(zeroed) !== h.readUInt32BE(crcAt)) fail('v2: CRC32C mismatch');
  }
  return tlvs;
}

/** SSL sub-TLV type to the ProxySslInfo field it fills. */
export const SSL_FIELDS: Partial<Record<number, 'version' | 'cn' | 'cipher' | 'sigAlg' | 'keyAlg'>> = {
  [PP2_SUBTYPE_SSL.VERSION]: 'version', [PP2_SUBTYPE_SSL.CN]: 'cn', [PP2_SUBTYPE_SSL.CIPHER]: 'cipher',
  [PP2_SUBTYPE_SSL.SIG_ALG]: 'sigAlg', [PP2_SUBTYPE_SSL.KEY_ALG]: 'keyAlg',
};

// §2.2.6: struct pp2_tlv_ssl { uint8 client; uint32 verify; struct pp2_tlv sub_tlv[]; }
function parseSsl(value: Buffer): ProxySslInfo {
  if (value.length < 5) fail('v2: SSL TLV shorter than 5 bytes');
  const client = value[0] ?? 0;
  const verify = value.readUInt32BE(1);
  const certBits = PP2_CLIENT.CERT_CONN | PP2_CLIENT.CERT_SESS;
  const ssl: ProxySslInfo = { client, verify, verified: verify === 0 && (client & certBits) !== 0 };
  const seen = new Set<number>();
  for (const [type, sub] of walkTlvs(value, 5, 'SSL sub-')) {
    if (seen.has(type)) fail(`v2: duplicate SSL sub-TLV 0x${hex(type)}`);
    seen.add(type);
    const field = SSL_FIELDS[type];
    if (field !== undefined) ssl[field] = text(sub, `SSL ${field}`);
  }
  return ssl;
}

/** Interpreted TLVs may appear once: two AUTHORITY values would make the header ambiguous. */
function unique(existing: unknown, name: string): void {
  if (existing !== undefined) fail(`v2: duplicate ${name} TLV`);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });
const CONTROL = /[\u0000-\u001f\u007f]/;

/** TLV strings are UTF-8 (§2.2.2, §2.2.6); control characters would poison logs and lookups. */
function text(value: Buffer, what: string): string {
  let s: string;
  try {
    s = UTF8.decode(value);
  } catch {
    fail(`v2: ${what} is not valid UTF-8`);
  }
  if (CONTROL.test(s)) fail(`v2: ${what} contains control characters`);
  return s;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), RFC 4960 Appendix B; node:zlib only has CRC-32.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32C of `data`; `crc32c(Buffer.from('123456789')) === 0xe3069283`. */
export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) c = (CRC32C_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}


