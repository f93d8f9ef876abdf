import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressFamily, canonicalIPv6, ipv6FromBytes, ipv6ToBytes, isStrictIPv4, NetMatcher, normalizeAddress, parseNetEntry,
  parseNetList, penaltyBucket,
} from '../../../src/listen/netmatch.js';

function matcher(list: string[]): NetMatcher {
  const r = parseNetList(list);
  if (!r.ok) throw new Error(r.error);
  return r.matcher;
}

describe('address text', () => {
  it('strict IPv4: four decimal parts, 0..255, no leading zeros', () => {
    for (const ok of ['0.0.0.0', '10.1.2.3', '255.255.255.255']) expect(isStrictIPv4(ok)).toBe(true);
    for (const bad of ['256.0.0.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1.2.3.', ' 1.2.3.4', '0x1.2.3.4', '1.2.3.4/8', '']) {
      expect(isStrictIPv4(bad)).toBe(false);
    }
  });
  it('IPv6 canonical form is what node sockets report', () => {
    expect(canonicalIPv6('2001:DB8:0:0:0:0:0:1')).toBe('2001:db8::1');
    expect(canonicalIPv6('0:0:0:0:0:ffff:a01:203')).toBe('::ffff:10.1.2.3');
    expect(canonicalIPv6('::ffff:10.1.2.3')).toBe('::ffff:10.1.2.3');
    for (const bad of ['fe80::1%eth0', '1::2::3', '::ffff:01.2.3.4', '::ffff:1.2.3', '12345::', 'g::1', '1.2.3.4', ':', '']) {
      expect(canonicalIPv6(bad)).toBeUndefined();
    }
  });
  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['::0.0.0.0', '00000000000000000000000000000000'],
    ['::1.2.3.4', '00000000000000000000000001020304'],
    ['::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['2001:db8::1', '20010db8000000000000000000000001'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
    ['fe80::', 'fe800000000000000000000000000000'],
  ])('ipv6ToBytes(%s)', (text, hex) => {
    expect(ipv6ToBytes(text).toString('hex')).toBe(hex);
    expect(ipv6FromBytes(Buffer.from(hex, 'hex'))).toBe(canonicalIPv6(text));
  });
  it('ipv6ToBytes / ipv6FromBytes round-trip on random addresses', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        expect(new Uint8Array(ipv6ToBytes(ipv6FromBytes(bytes)))).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
    expect(() => ipv6ToBytes('10.0.0.1')).toThrow(RangeError);
  });
  it('normalizeAddress unmaps IPv4-mapped IPv6 and drops zone ids', () => {
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('::FFFF:a01:203')).toBe('10.1.2.3');
    expect(normalizeAddress('2001:DB8::0:1')).toBe('2001:db8::1');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress('10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('::1.2.3.4')).toBe('::1.2.3.4'); // IPv4-compatible is not mapped
    expect(normalizeAddress('not an ip')).toBe('not an ip');
    expect(addressFamily('10.0.0.1')).toBe('ipv4');
    expect(addressFamily('fe80::1%lo')).toBe('ipv6');
    expect(addressFamily('example.com')).toBeUndefined();
  });
  it('penaltyBucket: IPv4 per address, IPv6 per /64 by default', () => {
    expect(penaltyBucket('10.1.2.3')).toBe('10.1.2.3');
    expect(penaltyBucket('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(penaltyBucket('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(penaltyBucket('2001:db8:1:2:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(penaltyBucket('2001:db8:1:2:3:4:5:6', 48)).toBe('2001:db8:1::/48');
    expect(penaltyBucket('2001:db8:1:2:3:4:5:6', 128)).toBe('2001:db8:1:2:3:4:5:6/128');
    expect(penaltyBucket('2001:db8::1', 0)).toBe('::/0');
    expect(penaltyBucket('2001:db8:1:2:3:4:5:6', 61)).toBe('2001:db8:1::/61');
    expect(penaltyBucket('garbage')).toBe('garbage');
    expect(() => penaltyBucket('::1', 129)).toThrow(RangeError);
    expect(() => penaltyBucket('::1', 6.5)).toThrow(RangeError);
  });
});

describe('NetMatcher', () => {
  const m = matcher(['10.0.0.0/8', '192.168.1.5', '2001:db8::/32', '::1', 'fe80::/10']);

  it.each([
    ['10.1.2.3', true],
    ['::ffff:10.1.2.3', true],
    ['::ffff:a01:203', true],
    ['11.0.0.1', false],
    ['::ffff:11.0.0.1', false],
    ['192.168.1.5', true],
    ['192.168.1.6', false],
    ['2001:db8:ffff::1', true],
    ['2001:0DB8::7', true],
    ['2001:db9::1', false],
    ['::1', true],
    ['::2', false],
    ['fe80::1%eth0', true],
    ['127.0.0.1', false],
    ['garbage', false],
    ['', false],
    ['10.1.2.3/8', false],
  ])('matches(%j) is %s', (addr, expected) => expect(m.matches(addr)).toBe(expected));

  it('an IPv4-mapped entry covers IPv4 peers, whichever way they are written', () => {
    const mapped = matcher(['::ffff:10.0.0.0/104', '::ffff:192.0.2.1']);
    expect(mapped.entries).toEqual([
      { family: 'ipv4', network: '10.0.0.0', prefix: 8 },
      { family: 'ipv4', network: '192.0.2.1', prefix: 32 },
    ]);
    expect(mapped.matches('10.200.0.1')).toBe(true);
    expect(mapped.matches('::ffff:10.200.0.1')).toBe(true);
    expect(mapped.matches('192.0.2.1')).toBe(true);
  });
  it('IPv4 and IPv6 spaces stay apart: ::/0 does not admit IPv4 peers', () => {
    const all4 = matcher(['0.0.0.0/0']);
    expect(all4.matches('203.0.113.1')).toBe(true);
    expect(all4.matches('::ffff:203.0.113.1')).toBe(true);
    expect(all4.matches('2001:db8::1')).toBe(false);
    const all6 = matcher(['::/0']);
    expect(all6.matches('2001:db8::1')).toBe(true);
    expect(all6.matches('::ffff:203.0.113.1')).toBe(false);
  });
  it('host bits are masked and blanks trimmed; toString lists canonical entries', () => {
    const x = matcher([' 10.1.2.3/8 ', '2001:DB8::1/32']);
    expect(x.toString()).toBe('10.0.0.0/8 2001:db8::/32');
    expect(x.size).toBe(2);
  });
  it('an empty list matches nothing', () => {
    expect(new NetMatcher().matches('10.0.0.1')).toBe(false);
    expect(matcher([]).matches('::1')).toBe(false);
  });
  it('agrees with a bit-by-bit model on random IPv4 addresses', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (net, prefix, addr) => {
        const toInt = (a: string): number => a.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
        const mask = prefix === 0 ? 0 : Math.floor(toInt(net) / 2 ** (32 - prefix)) === Math.floor(toInt(addr) / 2 ** (32 - prefix));
        const expected = prefix === 0 ? true : mask;
        const nm = new NetMatcher([`${net}/${prefix}`]);
        expect(nm.matches(addr)).toBe(expected);
        expect(nm.matches(`::ffff:${addr}`)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['mail.example.com', /not an IP address or CIDR/],
    ['10.0.0.0/33', /prefix length .*0\.\.32/],
    ['::/129', /prefix length .*0\.\.128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/08', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/8/9', /prefix length/],
    ['010.0.0.1', /not an IP address/],
    ['10.0.0', /not an IP address/],
    ['fe80::1%eth0', /not an IP address/],
    ['', /not an IP address/],
    ['*', /not an IP address/],
  ])('rejects %j with a clear error', (entry, reason) => {
    const r = parseNetEntry(entry);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(reason);
  });
  it('parseNetList reports the first bad entry with its index; the constructor throws', () => {
    const r = parseNetList(['10.0.0.0/8', '::1', '300.1.1.1', 'also bad']);
    expect(r).toEqual({ ok: false, index: 2, error: expect.stringMatching(/entry 3: "300\.1\.1\.1" is not an IP address/) });
    const notString = parseNetList(['10.0.0.0/8', 42]);
    expect(notString).toMatchObject({ ok: false, index: 1, error: expect.stringMatching(/must be a string/) });
    expect(() => new NetMatcher(['10.0.0.0/8', 'nope'])).toThrow(RangeError);
  });
});
