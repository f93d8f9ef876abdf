/**
 * R22: nothing a client or a passdb row controls can add a command toward a backend. User
 * names, passwords, `destuser`, `forward_*` fields, client ID values and forwarded client
 * facts containing CR, LF, NUL, quotes, backslashes and `{5}` literals reach scripted IMAP,
 * POP3 and LMTP backends (which parse what they get as a real server would) either exactly,
 * correctly quoted, or not at all; each backend sees exactly one login command (or one RCPT)
 * and nothing injected. Passdb values come from Redis hashes, where any byte can be stored.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decodeForward } from '../../src/backend/xclient.js';
import { asAString, readIdParams } from '../../src/imap/wire/args.js';
import { xtextDecode } from '../../src/lmtp/address.js';
import { greeted, pop3Lines } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import type { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { recordingImap, recordingLmtp, recordingPop3, type RecordedImapCommand, type Recorder } from '../support/recording-backends.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const UNTRUSTED = '127.0.0.5';
const TRUSTED = '127.0.0.6';
const INJECT = '\r\nX1 LOGOUT\r\n';

let redis: RedisServer;
let imap: Recorder<RecordedImapCommand>;
let imapPlain: Recorder<RecordedImapCommand>;
let pop3: Recorder<string>;
let lmtp: Recorder<string>;
let px: RunningPortier;

/** Passdb rows: each user's fields, for every protocol, pointing at that protocol's recorder. */
function rows(): Record<string, Record<string, string>> {
  const pw = '{PLAIN}pw';
  return {
    quote: { password: `{PLAIN}p"w\\{5}` },
    crlf: { password: `{PLAIN}pw${INJECT}` },
    dest: { password: pw, destuser: `victim${INJECT}` },
    destnul: { password: pw, destuser: 'victim\0admin' },
    destq: { password: pw, destuser: '"quoted user"@example.org' },
    fwd: { password: pw, [`forward_k"${INJECT}`]: `v"a\\l${INJECT}\0end`, forward_plain: 'ok' },
    plain: { password: pw, plainbackend: 'y' },
    bob: { password: pw },
  };
}

beforeAll(async () => {
  [redis, imap, imapPlain, pop3, lmtp] = await Promise.all([
    startRedis(),
    recordingImap('127.0.0.2'),
    recordingImap('127.0.0.3', 'IMAP4rev1 ID AUTH=PLAIN'),
    recordingPop3('127.0.0.2'),
    recordingLmtp('127.0.0.2'),
  ]);
  const r = new Redis(redis.url);
  for (const [user, fields] of Object.entries(rows())) {
    for (const [svc, rec] of [['imap', fields['plainbackend'] === undefined ? imap : imapPlain], ['pop3', pop3], ['lmtp', lmtp]] as const) {
      const { plainbackend: _unused, ...rest } = fields;
      await r.hset(`mail:${svc}:${user}`, { ...rest, proxy: 'y', host: rec.host, port: String(rec.port) });
    }
  }
  // A user name full of quoting trouble (allowed: auth_username_chars is empty).
  for (const [svc, rec] of [['imap', imap], ['pop3', pop3]] as const) {
    await r.hset(`mail:${svc}:q"u{5}te\\`, { password: '{PLAIN}pw', proxy: 'y', host: rec.host, port: String(rec.port) });
  }
  r.disconnect();
  px = await startPortier(
    testConfig(['imap', 'pop3', 'lmtp'], {
      // lmtp_proxy_idle_connections 0: each LMTP test reads the dialogue of a backend connection of its own.
      settings: { auth_username_chars: "''", auth_username_format: "'%u'", imap_id_retain: 'yes', login_trusted_networks: TRUSTED, lmtp_proxy_idle_connections: 0 },
      passdb: passdbEntry('redis', { connect: redis.url, key: "'mail:%s:%n'" }),
    }),
  );
});

afterAll(async () => {
  await px?.stop();
  await Promise.all([redis?.stop(), imap?.close(), imapPlain?.close(), pop3?.close(), lmtp?.close()]);
});

/** The recorder's sessions opened while `fn` ran. */
async function newSessions<C>(rec: Recorder<C>, fn: () => Promise<void>): Promise<C[][]> {
  const before = rec.sessions.length;
  await fn();
  await new Promise((r) => setTimeout(r, 100));
  return rec.sessions.slice(before);
}

async function imapClient(from = UNTRUSTED): Promise<LineClient> {
  const c = await greeted(px, 'imap', { from });
  expect(c.greeting).toMatch(/^\* OK /);
  return c;
}

/** The commands of one backend session that log in. */
const logins = (cmds: readonly RecordedImapCommand[]): RecordedImapCommand[] => cmds.filter((c) => c.name === 'LOGIN' || c.name === 'AUTHENTICATE');

/** user/password an IMAP backend would take from this login command. */
function credentials(cmd: RecordedImapCommand): { authzid?: string; user: string; password: string } {
  if (cmd.name === 'LOGIN') return { user: asAString(cmd.args[0])?.toString('latin1') ?? '', password: asAString(cmd.args[1])?.toString('latin1') ?? '' };
  const ir = cmd.args[1] !== undefined ? asAString(cmd.args[1])?.toString('latin1') : cmd.saslResponse;
  const [authzid = '', user = '', password = ''] = Buffer.from(ir ?? '', 'base64').toString('latin1').split('\0');
  return { authzid, user, password };
}

function idParams(cmds: readonly RecordedImapCommand[]): Map<string, string | null> {
  const ids = cmds.filter((c) => c.name === 'ID');
  expect(ids).toHaveLength(1);
  const parsed = readIdParams(ids[0]?.args ?? []);
  if (!parsed.ok) throw new Error(`backend could not parse ID: ${parsed.reason}`);
  return new Map(parsed.params);
}

describe('IMAP', () => {
  test('quotes, backslashes and {5} in the user name and password: one LOGIN, exact bytes', async () => {
    const sessions = await newSessions(imap, async () => {
      const c = await imapClient();
      c.write('a LOGIN "q\\"u{5}te\\\\" pw\r\n');
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
      const d = await imapClient();
      d.write('b LOGIN quote "p\\"w\\\\{5}"\r\n');
      expect((await d.until('b')).at(-1)).toMatch(/^b OK /);
      d.close();
    });
    expect(sessions.map((s) => s.map((c) => c.name))).toEqual([['ID', 'LOGIN'], ['ID', 'LOGIN']]);
    expect(sessions.map((s) => credentials(logins(s)[0] as RecordedImapCommand))).toEqual([
      { user: 'q"u{5}te\\', password: 'pw' },
      { user: 'quote', password: 'p"w\\{5}' },
    ]);
  });

  test('CR LF in a password (client literal) and in destuser (passdb): AUTHENTICATE PLAIN, nothing injected', async () => {
    const sessions = await newSessions(imap, async () => {
      const c = await imapClient();
      c.write(`a LOGIN crlf {${Buffer.byteLength(`pw${INJECT}`)}}\r\n`);
      expect(await c.line()).toMatch(/^\+ /);
      c.write(`pw${INJECT}\r\n`);
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
      const d = await imapClient();
      d.write('b LOGIN dest pw\r\n');
      expect((await d.until('b')).at(-1)).toMatch(/^b OK /);
      d.close();
    });
    expect(sessions).toHaveLength(2);
    const [crlf, dest] = sessions.map((s) => logins(s));
    expect(sessions.every((s) => s.every((c) => c.name === 'ID' || c.name === 'AUTHENTICATE'))).toBe(true);
    expect(crlf?.map(credentials)).toEqual([{ authzid: '', user: 'crlf', password: `pw${INJECT}` }]);
    expect(dest?.map(credentials)).toEqual([{ authzid: '', user: `victim${INJECT}`, password: 'pw' }]);
  });

  test('without LITERAL+ and SASL-IR: a synchronising literal, still exactly one LOGIN', async () => {
    const [s] = await newSessions(imapPlain, async () => {
      const c = await imapClient();
      c.write('a LOGIN plain pw\r\n');
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
    });
    expect(s?.map((c) => c.name)).toEqual(['ID', 'LOGIN']);
    // Now the CRLF password against the same backend (different user row, same recorder).
    const r = new Redis(redis.url);
    await r.hset('mail:imap:crlf2', { password: `{PLAIN}pw${INJECT}`, proxy: 'y', host: imapPlain.host, port: String(imapPlain.port) });
    r.disconnect();
    const [t] = await newSessions(imapPlain, async () => {
      const c = await imapClient();
      c.write(`a LOGIN crlf2 {${Buffer.byteLength(`pw${INJECT}`)}}\r\n`);
      expect(await c.line()).toMatch(/^\+ /);
      c.write(`pw${INJECT}\r\n`);
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
    });
    expect(t?.map((c) => c.name)).toEqual(['ID', 'LOGIN']);
    expect(credentials(logins(t ?? [])[0] as RecordedImapCommand)).toEqual({ user: 'crlf2', password: `pw${INJECT}` });
  });

  test('NUL in destuser: refused before anything is sent as a login', async () => {
    const [s] = await newSessions(imap, async () => {
      const c = await imapClient();
      c.write('a LOGIN destnul pw\r\n');
      expect((await c.until('a')).at(-1)).toMatch(/^a NO /);
      c.close();
    });
    expect(logins(s ?? [])).toEqual([]);
  });

  test('forward_ fields, client ID values and a forwarded address: one ID, values made safe, no injection', async () => {
    const [s] = await newSessions(imap, async () => {
      const c = await imapClient(TRUSTED);
      const evilIp = `1.2.3.4${INJECT}`;
      const value = `v${INJECT}x`;
      const port = `1${INJECT}`;
      const lit = (v: string): string => `{${Buffer.byteLength(v)}+}\r\n${v}`;
      c.write(`i ID ("name" ${lit(value)} "x-originating-ip" ${lit(evilIp)} "x-originating-port" ${lit(port)})\r\n`);
      expect((await c.until('i')).at(-1)).toMatch(/^i OK /);
      c.write('a LOGIN fwd pw\r\n');
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
    });
    expect(s?.map((c) => c.name)).toEqual(['ID', 'LOGIN']);
    const id = idParams(s ?? []);
    for (const [k, v] of id) expect(`${k}${v ?? ''}`).not.toMatch(/[\r\n\0]/);
    expect(id.get('name')).toBe('v  X1 LOGOUT  x');
    // Not an address: ignored, so the backend is told the real peer.
    expect(id.get('x-originating-ip')).toBe(TRUSTED);
    expect(id.get('x-forward-plain')).toBe('ok');
    expect(id.get('x-forward-k"  X1 LOGOUT  ')).toBe('v"a\\l  X1 LOGOUT   end');
  });

  test('a forwarded x-originating-ip that is not an address does not become the client address', async () => {
    const c = await imapClient(TRUSTED);
    c.write('i ID ("x-originating-ip" "not-an-ip")\r\na LOGIN nobody-here pw\r\n');
    await c.until('a');
    c.close();
    const refused = await px.waitForLog((l) => l.msg.startsWith('login refused') && l.user === 'nobody-here');
    expect(refused.rip).toBe(TRUSTED);
  });
});

describe('POP3', () => {
  async function pop3Login(lines: string[]): Promise<string> {
    const { c, replies } = await pop3Lines(px, lines, { from: UNTRUSTED });
    c.close();
    expect(c.greeting).toMatch(/^\+OK/);
    return replies.at(-1) ?? '';
  }
  const sent = (s: readonly string[] | undefined): string[] => (s ?? []).filter((l) => !l.startsWith('XCLIENT'));

  test('quotes and {5}: USER and PASS exactly; a CR inside PASS: one AUTH PLAIN instead', async () => {
    const sessions = await newSessions(pop3, async () => {
      expect(await pop3Login(['USER q"u{5}te\\', 'PASS pw'])).toMatch(/^\+OK/);
      expect(await pop3Login(['USER quote', 'PASS p"w\\{5}'])).toMatch(/^\+OK/);
    });
    expect(sent(sessions[0])).toEqual(['USER q"u{5}te\\', 'PASS pw']);
    expect(sent(sessions[1])).toEqual(['USER quote', 'PASS p"w\\{5}']);
    const r = new Redis(redis.url);
    await r.hset('mail:pop3:cr', { password: '{PLAIN}p\rw', proxy: 'y', host: pop3.host, port: String(pop3.port) });
    r.disconnect();
    const [cr] = await newSessions(pop3, async () => {
      expect(await pop3Login(['USER cr', 'PASS p\rw'])).toMatch(/^\+OK/);
    });
    expect(sent(cr)).toEqual([`AUTH PLAIN ${Buffer.from('\0cr\0p\rw').toString('base64')}`]);
  });

  test('CR LF in destuser: one AUTH PLAIN; NUL in destuser: nothing sent', async () => {
    const sessions = await newSessions(pop3, async () => {
      expect(await pop3Login(['USER dest', 'PASS pw'])).toMatch(/^\+OK/);
      expect(await pop3Login(['USER destnul', 'PASS pw'])).toMatch(/^-ERR/);
    });
    expect(sent(sessions[0])).toEqual([`AUTH PLAIN ${Buffer.from(`\0victim${INJECT}\0pw`).toString('base64')}`]);
    expect(sent(sessions[1])).toEqual([]);
  });

  test('forward_ fields: one XCLIENT whose FORWARD decodes to the exact values', async () => {
    const [s] = await newSessions(pop3, async () => {
      expect(await pop3Login(['USER fwd', 'PASS pw'])).toMatch(/^\+OK/);
    });
    const xclient = (s ?? []).filter((l) => l.startsWith('XCLIENT'));
    expect(xclient).toHaveLength(1);
    expect(sent(s)).toEqual(['USER fwd', 'PASS pw']);
    const forward = /FORWARD=(\S+)/.exec(xclient[0] ?? '')?.[1] ?? '';
    expect(decodeForward(forward)).toEqual(new Map([[`k"${INJECT}`, `v"a\\l${INJECT}\0end`], ['plain', 'ok']]));
  });
});

describe('LMTP', () => {
  async function deliver(lines: string[], from = UNTRUSTED): Promise<string[]> {
    const c = await greeted(px, 'lmtp', { from });
    const replies: string[] = [];
    const reply = async (): Promise<string> => {
      let l = await c.line();
      while (/^\d{3}-/.test(l)) l = await c.line();
      return l;
    };
    expect(c.greeting).toMatch(/^220 /);
    for (const l of lines) {
      c.write(`${l}\r\n`);
      replies.push(await reply());
    }
    c.write('QUIT\r\n');
    c.close();
    return replies;
  }

  test('destuser with CR LF is refused for its recipient; a quoted destuser is sent exactly once', async () => {
    const sessions = await newSessions(lmtp, async () => {
      const replies = await deliver(['LHLO client.example', 'MAIL FROM:<>', 'RCPT TO:<dest@example.org>', 'RCPT TO:<destq@example.org>', 'DATA', 'Subject: x\r\n\r\nbody\r\n.']);
      expect(replies[2]).toMatch(/^4\d\d /);
      expect(replies[3]).toMatch(/^250 /);
      expect(replies[5]).toMatch(/^250 /);
    });
    expect(sessions).toHaveLength(1);
    const rcpts = (sessions[0] ?? []).filter((l) => l.startsWith('RCPT'));
    expect(rcpts).toEqual([`RCPT TO:<"quoted user"@example.org> ORCPT=rfc822;destq@example.org`]);
    expect((sessions[0] ?? []).every((l) => /^(LHLO|XCLIENT|MAIL|RCPT|DATA|QUIT)\b/.test(l))).toBe(true);
  });

  test('forward_ fields: XRCPTFORWARD in xtext on the one RCPT line, decoding to the exact values', async () => {
    const [s] = await newSessions(lmtp, async () => {
      const replies = await deliver(['LHLO client.example', 'MAIL FROM:<>', 'RCPT TO:<fwd>', 'DATA', 'Subject: x\r\n\r\nbody\r\n.']);
      expect(replies.slice(2)).toEqual([expect.stringMatching(/^250 /), expect.stringMatching(/^354 /), expect.stringMatching(/^250 /)]);
    });
    const rcpts = (s ?? []).filter((l) => l.startsWith('RCPT'));
    expect(rcpts).toHaveLength(1);
    const xtext = /XRCPTFORWARD=(\S+)/.exec(rcpts[0] ?? '')?.[1] ?? '';
    expect(decodeForward(xtextDecode(xtext) ?? '')).toEqual(new Map([[`k"${INJECT}`, `v"a\\l${INJECT}\0end`], ['plain', 'ok']]));
  });

  test('a trusted XCLIENT with CR LF in HELO or ADDR is refused; the backend gets one clean XCLIENT', async () => {
    const [s] = await newSessions(lmtp, async () => {
      const replies = await deliver(
        ['LHLO mta.example', 'XCLIENT HELO=evil+0D+0ARSET', 'XCLIENT ADDR=1.2.3.4+0D+0ARSET', 'XCLIENT HELO=good"name ADDR=10.0.0.9', 'LHLO mta.example', 'MAIL FROM:<>', 'RCPT TO:<bob>', 'DATA', 'x\r\n.'],
        TRUSTED,
      );
      expect(replies[1]).toMatch(/^501 /);
      expect(replies[2]).toMatch(/^501 /);
      expect(replies[3]).toMatch(/^220 /);
      expect(replies.at(-1)).toMatch(/^250 /);
    });
    const xclient = (s ?? []).filter((l) => l.startsWith('XCLIENT'));
    expect(xclient).toHaveLength(1);
    expect(xclient[0]).toMatch(/^XCLIENT ADDR=10\.0\.0\.9 PORT=\d+ HELO=good"name PROTO=LMTP SESSION=\S+ TTL=4$/);
    expect((s ?? []).filter((l) => l.startsWith('RSET'))).toEqual([]);
  });
});
