/**
 * IP address text and network lists: strict parsing for config (`login_trusted_networks`,
 * `haproxy_trusted_networks`), matching of peer addresses, and penalty bucket keys.
 * IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`, from dual-stack sockets) are treated as IPv4.
 */
import { BlockList, SocketAddress } from 'node:net';

export type IpFamily = 'ipv4' | 'ipv6';

// Four-part decimal, no leading zeros (proxy-protocol.txt §2.1: "Heading zeroes are not
// permitted ... to avoid any possible confusion with octal numbers").
const IPV4_STRICT = /^(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]{2,45}$/;
const PREFIX_TEXT = /^(?:0|[1-9][0-9]{0,2})$/;

/** True for dotted-quad IPv4 text with every part in 0..255 and no leading zeros. */
export function isStrictIPv4(text: string): boolean {
  if (!IPV4_STRICT.test(text)) return false;
  return text.split('.').every((part) => Number(part) <= 255);
}

/**
 * Strict IPv6 text (no zone id, an embedded IPv4 tail must itself be strict) to its
 * canonical inet_ntop form, the same form node reports for `socket.remoteAddress`.
 * Returns undefined for anything else.
 */
export function canonicalIPv6(text: string): string | undefined {
  if (!IPV6_CHARS.test(text)) return undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.') && !isStrictIPv4(text.slice(lastColon + 1))) return undefined;
  try {
    return new SocketAddress({ address: text, family: 'ipv6' }).address;
  } catch {
    return undefined;
  }
}

/** 16 network-order bytes to canonical IPv6 text. */
export function ipv6FromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new RangeError(`IPv6 address needs 16 bytes, got ${bytes.length}`);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** 16 network-order bytes from IPv6 text that `canonicalIPv6` accepts; throws RangeError otherwise. */
export function ipv6ToBytes(text: string): Buffer {
  let s = canonicalIPv6(text);
  if (s === undefined) throw new RangeError(`not an IPv6 address: ${JSON.stringify(text)}`);
  const out = Buffer.alloc(16);
  const lastColon = s.lastIndexOf(':');
  const v4Tail = s.includes('.') ? s.slice(lastColon + 1).split('.').map(Number) : undefined;
  if (v4Tail !== undefined) s = `${s.slice(0, lastColon + 1)}0:0`; // the IPv4 tail fills two groups
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4Tail !== undefined) out.set(v4Tail, 12);
  return out;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((x) => x === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** 'ipv4', 'ipv6' (zone id allowed) or undefined; text as node sockets report it. */
export function addressFamily(addr: string): IpFamily | undefined {
  if (isStrictIPv4(addr)) return 'ipv4';
  return canonicalIPv6(stripZone(addr)) === undefined ? undefined : 'ipv6';
}

/**
 * Canonical text for a peer address: IPv4 unchanged, IPv6 in inet_ntop form without a zone
 * id, IPv4-mapped IPv6 unmapped to dotted IPv4. Text that is no address is returned as is.
 */
export function normalizeAddress(addr: string): string {
  if (isStrictIPv4(addr)) return addr;
  const v6 = canonicalIPv6(stripZone(addr));
  if (v6 === undefined) return addr;
  const bytes = ipv6ToBytes(v6);
  return isV4Mapped(bytes) ? bytes.subarray(12).join('.') : v6;
}

/**
 * Key for per-source accounting (auth penalty): IPv4 per address, IPv6 per network of
 * `v6PrefixBits` (default /64, one end-user subnet; Dovecot masks to /48), as `2001:db8:1:2::/64`.
 * An unparsable address is its own bucket.
 */
export function penaltyBucket(addr: string, v6PrefixBits = 64): string {
  if (!Number.isInteger(v6PrefixBits) || v6PrefixBits < 0 || v6PrefixBits > 128) {
    throw new RangeError(`v6PrefixBits must be an integer 0..128, got ${v6PrefixBits}`);
  }
  const norm = normalizeAddress(addr);
  if (isStrictIPv4(norm) || canonicalIPv6(norm) === undefined) return norm;
  return `${maskedNetwork('ipv6', norm, v6PrefixBits)}/${v6PrefixBits}`;
}

/** One parsed list entry: canonical network address and prefix length. */
export interface NetEntry {
  readonly family: IpFamily;
  readonly network: string;
  readonly prefix: number;
}

export type NetEntryResult = { ok: true; entry: NetEntry } | { ok: false; error: string };

export type NetListResult =
  | { ok: true; matcher: NetMatcher }
  | { ok: false; error: string; /** 0-based position of the bad entry */ index: number };

/**
 * Parse `10.0.0.0/8`, `192.0.2.7`, `2001:db8::/32`, `::1` (surrounding blanks ignored).
 * Host bits below the prefix are masked off (`10.1.2.3/8` is `10.0.0.0/8`); an
 * IPv4-mapped IPv6 entry with prefix >= 96 becomes the IPv4 network it covers.
 */
export function parseNetEntry(input: unknown): NetEntryResult {
  if (typeof input !== 'string') return { ok: false, error: `network entry must be a string, got ${typeof input}` };
  const text = input.trim();
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}...` : text);
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const prefixText = slash < 0 ? undefined : text.slice(slash + 1);
  let family: IpFamily;
  let addr: string;
  if (isStrictIPv4(addrText)) {
    family = 'ipv4';
    addr = addrText;
  } else {
    const v6 = canonicalIPv6(addrText);
    if (v6 === undefined) {
      return { ok: false, error: `${shown} is not an IP address or CIDR network (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)` };
    }
    family = 'ipv6';
    addr = v6;
  }
  const max = family === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!PREFIX_TEXT.test(prefixText) || Number(prefixText) > max) {
      return { ok: false, error: `${shown} has an invalid prefix length (must be 0..${max} for ${family === 'ipv4' ? 'IPv4' : 'IPv6'})` };
    }
    prefix = Number(prefixText);
  }
  if (family === 'ipv6' && prefix >= 96) {
    const bytes = ipv6ToBytes(addr);
    if (isV4Mapped(bytes)) {
      family = 'ipv4';
      addr = bytes.subarray(12).join('.');
      prefix -= 96;
    }
  }
  return { ok: true, entry: { family, network: maskedNetwork(family, addr, prefix), prefix } };
}

/** Config validation entry point: the first bad entry is reported with its index. */
export function parseNetList(list: readonly unknown[]): NetListResult {
  const entries: NetEntry[] = [];
  for (const [index, item] of list.entries()) {
    const r = parseNetEntry(item);
    if (!r.ok) return { ok: false, error: `network list entry ${index + 1}: ${r.error}`, index };
    entries.push(r.entry);
  }
  return { ok: true, matcher: NetMatcher.fromEntries(entries) };
}

/**
 * An immutable set of networks; `matches` is true when a peer address lies in one of them.
 * IPv4 and IPv6 are kept apart (node's BlockList alone would let `::/0` match IPv4 peers).
 */
export class NetMatcher {
  readonly #v4 = new BlockList();
  readonly #v6 = new BlockList();
  readonly #entries: readonly NetEntry[];

  /** Throws RangeError on the first invalid entry; use `parseNetList` for config errors. */
  constructor(list: readonly string[] = []) {
    const entries: NetEntry[] = [];
    for (const item of list) {
      const r = parseNetEntry(item);
      if (!r.ok) throw new RangeError(r.error);
      entries.push(r.entry);
    }
    this.#entries = Object.freeze(entries);
    for (const e of entries) (e.family === 'ipv4' ? this.#v4 : this.#v6).addSubnet(e.network, e.prefix, e.family);
  }

  static fromEntries(entries: readonly NetEntry[]): NetMatcher {
    return new NetMatcher(entries.map((e) => `${e.network}/${e.prefix}`));
  }

  /** Canonical entries, e.g. for `config dump`. */
  get entries(): readonly NetEntry[] {
    return this.#entries;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** False for text that is not an IP address (never throws). */
  matches(address: string): boolean {
    if (this.#entries.length === 0) return false;
    const norm = normalizeAddress(address);
    if (isStrictIPv4(norm)) return this.#v4.check(norm, 'ipv4');
    const v6 = canonicalIPv6(norm);
    return v6 === undefined ? false : this.#v6.check(v6, 'ipv6');
  }

  toString(): string {
    return this.#entries.map((e) => `${e.network}/${e.prefix}`).join(' ');
  }
}

function stripZone(addr: string): string {
  const pct = addr.indexOf('%');
  return pct < 0 ? addr : addr.slice(0, pct);
}

function maskedNetwork(family: IpFamily, addr: string, prefix: number): string {
  const bytes = family === 'ipv4' ? Uint8Array.from(addr.split('.').map(Number)) : ipv6ToBytes(addr);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return family === 'ipv4' ? bytes.join('.') : ipv6FromBytes(bytes);
}
