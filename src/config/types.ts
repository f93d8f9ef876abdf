/**
 * Field types shared by the config schema: Dovecot-style booleans (yes/no), durations,
 * sizes, network lists and file paths. Each turns a bad value into one readable issue.
 */
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration, parseSize } from './units.js';

function custom<T>(expected: string, parse: (value: unknown) => T | null) {
  return z.unknown().transform((value, ctx): T => {
    const out = parse(value);
    if (out === null) {
      ctx.issues.push({ code: 'custom', message: `expected ${expected}, got ${describe(value)}`, input: value });
      return z.NEVER;
    }
    return out;
  });
}

export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

const TRUE = new Set(['yes', 'y', 'true', 'on', '1']);
const FALSE = new Set(['no', 'n', 'false', 'off', '0']);

/** Dovecot booleans: yes/no (YAML 1.2 reads those as strings), true/false. */
export const yesNo = custom<boolean>('yes or no', (v) => {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.toLowerCase();
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
  }
  return null;
});

/** A duration in milliseconds: "30s", "3 mins", "1h"; a bare number means seconds. */
export const duration = custom<number>('a duration like 30s, 5m or 1h', (v) =>
  typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : null,
);

/** A size in bytes: "64k", "10M"; a bare number means bytes. */
export const size = custom<number>('a size like 64k or 10M', (v) =>
  typeof v === 'string' || typeof v === 'number' ? parseSize(v) : null,
);

export const port = custom<number>('a port number 0-65535', (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : null,
);

/** Dovecot lists are space/comma separated strings; YAML lists are accepted too. */
export function wordList(expected = 'a list') {
  return custom<string[]>(expected, (v) => {
    if (typeof v === 'string') return v.split(/[\s,]+/).filter((w) => w !== '');
    if (Array.isArray(v) && v.every((w) => typeof w === 'string' || typeof w === 'number')) {
      return v.map(String).filter((w) => w !== '');
    }
    return null;
  });
}

/** A network is an IP, an IP/bits CIDR, or "local" is not supported here: IPs only. */
export function checkNetwork(entry: string): string | null {
  const [addr, bits, extra] = entry.split('/');
  if (addr === undefined || extra !== undefined) return `"${entry}" is not an IP or CIDR`;
  const family = isIP(addr);
  if (family === 0) return `"${entry}" is not an IP or CIDR`;
  if (bits !== undefined) {
    const n = Number(bits);
    if (!/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)) return `"${entry}" has an invalid prefix length`;
  }
  return null;
}

export const netList = wordList('a list of networks').transform((list, ctx) => {
  for (const entry of list) {
    const problem = checkNetwork(entry);
    if (problem) ctx.issues.push({ code: 'custom', message: problem, input: entry });
  }
  return list;
});

/** Build a matcher for a validated network list (IPv4-mapped IPv6 addresses match IPv4 rules). */
export function netBlockList(list: readonly string[]): BlockList {
  const bl = new BlockList();
  for (const entry of list) {
    const [addr = '', bits] = entry.split('/');
    const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) bl.addAddress(addr, type);
    else bl.addSubnet(addr, Number(bits), type);
  }
  return bl;
}

/** Dovecot writes file contents as `<path`; portier takes paths and accepts the `<` for familiarity. */
export const filePath = custom<string>('a file path', (v) =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().replace(/^</, '') : null,
);
