/**
 * R4 at the front-ends (and a small, seeded R5): mutated IMAP, POP3 and LMTP sessions sent
 * in random chunks over real sockets to an in-process portier, from an untrusted and from a
 * trusted address (so ID x-* fields and XCLIENT are parsed too). The unit fuzzers cover the
 * framers; this drives the command tables, SASL glue and session state machines behind
 * them. Every input must end in a defined state: no internal error, no session left open
 * after its client is gone, no byte ever reaching a backend (no input can log in), and
 * portier still serving normally afterwards.
 */
import { connect, createServer, type Server } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { greeted, imapCommandOn } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const SEED = 0x5eed_0005;
const RUNS_PER_PROTOCOL = 300;
const PARALLEL = 12;

let px: RunningPortier;
let backend: Server;
let backendConnections = 0;

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64');

const SEEDS: Record<'imap' | 'pop3' | 'lmtp', readonly string[]> = {
  imap: [
    'a CAPABILITY\r\nb NOOP\r\nc LOGIN alice wrong\r\nd LOGOUT\r\n',
    `a AUTHENTICATE PLAIN ${b64('\0alice\0wrong')}\r\nb AUTHENTICATE PLAIN\r\n${b64('\0alice\0x')}\r\n`,
    `a AUTHENTICATE LOGIN\r\n${b64('alice')}\r\n${b64('pw')}\r\nb AUTHENTICATE CRAM-MD5\r\n${b64('alice 00112233445566778899aabbccddeeff')}\r\n`,
    'a ID ("name" "x" "x-originating-ip" "10.1.2.3" "x-proxy-ttl" "1" "x-originating-port" "99999")\r\nb ID NIL\r\n',
    'a LOGIN {5}\r\nalice {5+}\r\nwrong\r\nb LOGIN "al\\"ice" "p\\\\w"\r\nc STARTTLS\r\n',
    'a LOGIN alice*admin wrong\r\nb AUTHENTICATE PLAIN =\r\nc AUTHENTICATE PLAIN\r\n*\r\nd X ((((a))))\r\n',
  ],
  pop3: [
    'CAPA\r\nUSER alice\r\nPASS wrong\r\nQUIT\r\n',
    `AUTH PLAIN ${b64('\0alice\0wrong')}\r\nAUTH PLAIN\r\n${b64('\0alice\0x')}\r\nAUTH\r\n`,
    `AUTH LOGIN\r\n${b64('alice')}\r\n${b64('pw')}\r\nAUTH CRAM-MD5\r\n*\r\nAPOP alice 0123456789abcdef0123456789abcdef\r\n`,
    'PASS nouser\r\nUSER a*b\r\nPASS x y z\r\nSTLS\r\nNOOP\r\nSTAT\r\n',
  ],
  lmtp: [
    'LHLO client.example\r\nMAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<bob+x@example.org> ORCPT=rfc822;bob+2Bx@example.org\r\nDATA\r\nRSET\r\nQUIT\r\n',
    'LHLO x\r\nXCLIENT ADDR=10.9.8.7 PORT=1234 HELO=mx.example TTL=3 SESSION=abc\r\nLHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<"quoted user"@example.org>\r\nNOOP\r\nVRFY bob\r\n',
    'HELO x\r\nEHLO x\r\nLHLO x\r\nMAIL FROM:<@route,@r2:a@b>\r\nRCPT TO:<nobody>\r\nDATA\r\n.\r\nSTARTTLS\r\n',
  ],
};

const TOKENS = ['\r\n', '\n', '\r', '\0', '\xff', ' ', '"', '\\', '{', '}', '{9}\r\n', '{4294967296}\r\n', '(', ')', '*', '=', '+', '<', '>', '@', ':', '.'];

/** A seed transcript with a few zzuf-like mutations: byte flips, inserted tokens, deletions, repeats. */
function mutated(seeds: readonly string[]): fc.Arbitrary<{ bytes: Buffer; chunk: number }> {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 12 }) }),
    fc.record({ kind: fc.constant('repeat' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }), times: fc.integer({ min: 2, max: 6 }) }),
  );
  return fc.record({ seed: fc.constantFrom(...seeds), ops: fc.array(op, { maxLength: 6 }), chunk: fc.integer({ min: 1, max: 256 }) }).map(({ seed, ops, chunk }) => {
    let b = Buffer.from(seed, 'latin1');
    for (const o of ops) {
      const at = b.length === 0 ? 0 : o.at % b.length;
      if (o.kind === 'flip' && b.length > 0) b[at] = o.byte;
      else if (o.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(o.text, 'latin1'), b.subarray(at)]);
      else if (o.kind === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + o.len)]);
      else if (o.kind === 'repeat') b = Buffer.concat([b.subarray(0, at), ...Array.from({ length: o.times }, () => b.subarray(at, at + o.len)), b.subarray(at)]);
    }
    return { bytes: b, chunk };
  });
}

/** Send in chunks (a turn of the event loop between them), half-close, wait for the server to close. */
function play(port: number, localAddress: string, input: { bytes: Buffer; chunk: number }): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => {});
    s.on('data', () => {});
    const done = setTimeout(() => s.destroy(), 4000);
    s.on('close', () => {
      clearTimeout(done);
      resolve();
    });
    s.on('connect', () => {
      let off = 0;
      const next = (): void => {
        if (s.destroyed) return;
        if (off >= input.bytes.length) {
          s.end();
          return;
        }
        s.write(input.bytes.subarray(off, off + input.chunk));
        off += input.chunk;
        setImmediate(next);
      };
      next();
    });
  });
}

beforeAll(async () => {
  backend = createServer((sock) => {
    backendConnections++;
    sock.destroy();
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.3', r));
  const port = (backend.address() as { port: number }).port;
  const to = `proxy=y host=127.0.0.3 port=${port}`;
  const secret = 'Fuzz-Unguessable-8d1f0c2e9b7a';
  px = await startPortier(
    testConfig(['imap', 'pop3', 'lmtp'], {
      settings: {
        auth_mechanisms: 'plain login cram-md5 apop',
        auth_master_user_separator: "'*'",
        login_timeout: '3s',
        login_max_bad_commands: 10,
        login_trusted_networks: '127.0.0.6',
      },
      passdb:
        passdbEntry('passwd-file', { master: 'yes', args: 'scheme=PLAIN {{dir}}/masters' }) +
        passdbEntry('passwd-file', { args: 'scheme=PLAIN {{dir}}/users-%s' }),
    }),
    { 'users-imap': `alice:{PLAIN}${secret}::::::${to}\n`, 'users-pop3': `alice:{PLAIN}${secret}::::::${to}\n`, 'users-lmtp': '', masters: `admin:{PLAIN}${secret}\n` },
  );
});

afterAll(async () => {
  await px?.stop();
  await new Promise<void>((r) => backend?.close(() => r()));
});

test(`${RUNS_PER_PROTOCOL} mutated sessions per protocol, untrusted and trusted: defined ends, nothing reaches a backend`, async () => {
  const jobs: (() => Promise<void>)[] = [];
  for (const protocol of ['imap', 'pop3', 'lmtp'] as const) {
    const inputs = fc.sample(mutated(SEEDS[protocol]), { numRuns: RUNS_PER_PROTOCOL, seed: SEED });
    inputs.forEach((input, i) => jobs.push(() => play(px.port(protocol), i % 2 === 0 ? '127.0.0.5' : '127.0.0.6', input)));
  }
  for (let i = 0; i < jobs.length; i += PARALLEL) await Promise.all(jobs.slice(i, i + PARALLEL).map((j) => j()));

  for (let i = 0; i < 100 && px.portier.sessionCount > 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(px.portier.sessionCount).toBe(0);
  expect(backendConnections).toBe(0);
  const logs = px.logs();
  expect(logs.filter((l) => l.reason === 'internal_error' || /internal error/i.test(l.msg))).toEqual([]);
  // Every connection ended with exactly one closing line with a machine reason.
  const ends = logs.filter((l) => typeof l.reason === 'string');
  expect(ends.length).toBe(jobs.length);

  // Still serving normally.
  const c = await greeted(px);
  expect(c.greeting).toMatch(/^\* OK /);
  expect((await imapCommandOn(c, 'z CAPABILITY')).reply).toMatch(/^z OK /);
  c.close();
}, 120_000);
