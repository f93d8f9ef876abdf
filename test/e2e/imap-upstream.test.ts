/**
 * How portier talks to IMAP backends, against scripted backends: what it relays and what it
 * keeps back during the login, response codes, retries, PREAUTH and LOGINDISABLED, ID
 * contents, pipelining, and how credentials are encoded.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted, imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { plainServer, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import type { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const fakes: Record<string, FakeImap> = {};
let px: RunningPortier;

const ok = (line: string): string => `${line.split(' ')[0]} OK [CAPABILITY IMAP4rev1 IDLE MOVE] Logged in`;

async function setup(): Promise<void> {
  fakes['relay'] = await startFakeImap({
    respond: plainServer((line) => {
      const tag = line.split(' ')[0];
      return ['* OK [ALERT] Your password expires soon', '* CAPABILITY IMAP4rev1 SECRET-CAP', '* ID ("x" "y")', `${tag} OK [CAPABILITY IMAP4rev1 IDLE] Logged in`];
    }),
  });
  fakes['nocaps'] = await startFakeImap({ respond: plainServer((line) => `${line.split(' ')[0]} OK Logged in`) });
  fakes['limit'] = await startFakeImap({ respond: plainServer((line) => `${line.split(' ')[0]} NO [LIMIT] Too many sessions`) });
  fakes['unavail'] = await startFakeImap({ respond: plainServer((line) => `${line.split(' ')[0]} NO [UNAVAILABLE] Maintenance`) });
  fakes['bad'] = await startFakeImap({ respond: plainServer((line) => `${line.split(' ')[0]} BAD what`) });
  fakes['bye'] = await startFakeImap({ respond: plainServer(() => '* BYE going away') });
  fakes['preauth'] = await startFakeImap({ greeting: '* PREAUTH [CAPABILITY IMAP4rev1] logged in already' });
  fakes['logindisabled'] = await startFakeImap({ greeting: '* OK [CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS] hi', respond: plainServer(ok) });
  fakes['plain'] = await startFakeImap({ respond: plainServer(ok) });
  // No SASL-IR, no LITERAL+: a password that is not simple must go as a synchronising literal.
  let literalTag = '';
  fakes['nosaslir'] = await startFakeImap({
    greeting: '* OK [CAPABILITY IMAP4rev1 ID] hi',
    respond: (line) => {
      const [tag, cmd] = line.split(' ');
      if (cmd === 'ID') return `${tag} OK`;
      if (/\{\d+\}$/.test(line)) {
        literalTag = tag ?? '';
        return '+ go ahead';
      }
      if (literalTag !== '') {
        const t = literalTag;
        literalTag = '';
        return `${t} OK [CAPABILITY IMAP4rev1] literal received`;
      }
      return `${tag} OK`;
    },
  });
  // Answers ID only after 300 ms, and tells in its LOGIN reply whether ID was answered yet.
  const idAnswered = new WeakSet<object>();
  fakes['slowid'] = await startFakeImap({
    respond: (line, conn) => {
      const [tag, cmd] = line.split(' ');
      if (cmd === 'ID') {
        setTimeout(() => {
          idAnswered.add(conn);
          conn.write(`* ID NIL\r\n${tag} OK ID\r\n`);
        }, 300);
        return undefined;
      }
      if (cmd === 'LOGIN') return `${tag} OK [CAPABILITY IMAP4rev1] ${idAnswered.has(conn) ? 'after-id' : 'before-id'}`;
      return `${tag} OK`;
    },
  });
}

function users(): string {
  const to = (name: string): string => `proxy=y host=${fakes[name]?.host} port=${fakes[name]?.port} nopassword=y`;
  return [
    `relay:::::::${to('relay')}`,
    `nocaps:::::::${to('nocaps')}`,
    `limit:::::::${to('limit')}`,
    `unavail:::::::${to('unavail')}`,
    `bad:::::::${to('bad')}`,
    `bye:::::::${to('bye')}`,
    `preauth:::::::${to('preauth')}`,
    `logindisabled:::::::${to('logindisabled')}`,
    `plain:::::::${to('plain')} forward_tenant=acme`,
    `sourced:::::::${to('plain')} source_ip=127.0.0.9`,
    `master:::::::${to('plain')} master=admin pass=admin-secret destuser=target`,
    `nosaslir:::::::${to('nosaslir')}`,
    `piped:::::::${to('slowid')}`,
    `unpiped:::::::${to('slowid')} proxy_nopipelining`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  await setup();
  px = await startPortier(
    testConfig(['imap'], { settings: { login_trusted_networks: '127.0.0.6', login_source_ips: '127.0.0.8 ?192.0.2.1' } }),
    { users: users() },
  );
});

afterAll(async () => {
  await px?.stop();
  await Promise.all(Object.values(fakes).map((f) => f.close()));
});

async function login(user: string, pass: string, from = '127.0.0.5'): Promise<{ c: LineClient; lines: string[] }> {
  const { c, lines } = await imapCommand(px, `t1 LOGIN ${user} ${pass}`, { from, timeoutMs: 10_000 });
  return { c, lines };
}

describe('relaying the backend login reply', () => {
  test('untagged lines are relayed except CAPABILITY and ID; the tagged OK gets the client tag', async () => {
    const { c, lines } = await login('relay', 'pw');
    expect(lines).toEqual(['* OK [ALERT] Your password expires soon', 't1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in']);
    c.close();
  });

  test('an OK without capabilities is preceded by the backend CAPABILITY when it differs', async () => {
    const { c, lines } = await login('nocaps', 'pw');
    expect(lines).toEqual(['* CAPABILITY IMAP4rev1 ID LITERAL+ SASL-IR AUTH=PLAIN', 't1 OK Logged in']);
    c.close();
  });

  test('a backend response code other than AUTHENTICATIONFAILED is relayed', async () => {
    const { c, lines } = await login('limit', 'pw');
    expect(lines).toEqual(['t1 NO [LIMIT] Too many sessions']);
    c.close();
  });

  test('NO [UNAVAILABLE] is retried, then relayed', async () => {
    const before = fakes['unavail']?.connections.length ?? 0;
    const { c, lines } = await login('unavail', 'pw');
    expect(lines).toEqual(['t1 NO [UNAVAILABLE] Maintenance']);
    expect((fakes['unavail']?.connections.length ?? 0) - before).toBe(4);
    c.close();
  });

  test('BAD, BYE during login, and PREAUTH all become a temporary failure', async () => {
    for (const user of ['bad', 'bye', 'preauth']) {
      const { c, lines } = await login(user, 'pw');
      expect(lines, user).toEqual(['t1 NO [UNAVAILABLE] Account is temporarily unavailable.']);
      c.close();
    }
    // PREAUTH: portier never sent credentials to a backend that skipped authentication.
    expect(fakes['preauth']?.connections.every((conn) => conn.received.length === 0)).toBe(true);
  });

  test('LOGINDISABLED at the backend is a configuration error, and no password is sent', async () => {
    const { c, lines } = await login('logindisabled', 'pw');
    expect(lines).toEqual(['t1 NO [SERVERBUG] Account is temporarily unavailable.']);
    expect(fakes['logindisabled']?.connections.flatMap((x) => x.received).some((l) => /LOGIN|AUTHENTICATE/.test(l))).toBe(false);
    c.close();
  });
});

describe('what portier sends', () => {
  test('ID carries the client address, session, TTL and forward_ fields, then LOGIN', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const { c, lines } = await login('plain', 'simple-pw');
    expect(lines.at(-1)).toMatch(/^t1 OK /);
    c.close();
    const conn = fakes['plain']?.connections[before];
    const id = conn?.received.find((l) => l.startsWith('I ID ')) ?? '';
    expect(id).toMatch(/"x-originating-ip" "127\.0\.0\.5"/);
    expect(id).toMatch(/"x-connected-ip" "127\.0\.0\.1"/);
    expect(id).toMatch(/"x-proxy-ttl" "4"/);
    expect(id).toMatch(/"x-forward-tenant" "acme"/);
    const session = /"x-session-id" "([^"]+)"/.exec(id)?.[1];
    expect(px.logs().some((l) => l.session === session && l.msg.startsWith('Started proxying'))).toBe(true);
    expect(conn?.received.find((l) => l.startsWith('L '))).toBe('L LOGIN plain simple-pw');
  });

  test('backend connections come from login_source_ips, or the source_ip field', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const a = await login('plain', 'pw');
    a.c.close();
    const b = await login('sourced', 'pw');
    b.c.close();
    const conns = fakes['plain']?.connections.slice(before) ?? [];
    expect(conns.map((c) => c.remoteAddress)).toEqual(['127.0.0.8', '127.0.0.9']);
  });

  test('passwords that are not simple go as AUTHENTICATE PLAIN with SASL-IR, bytes exact', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const c = await greeted(px);
    c.write('t1 LOGIN plain {9}\r\n');
    expect(await c.line()).toBe('+ OK');
    c.write(Buffer.concat([Buffer.from('p\u00e4ss"\\', 'utf8'), Buffer.from([0x20, 0x7e])]));
    c.write('\r\n');
    expect((await c.until('t1')).at(-1)).toMatch(/^t1 OK /);
    c.close();
    const sent = fakes['plain']?.connections[before]?.received.find((l) => l.startsWith('L ')) ?? '';
    expect(sent).toMatch(/^L AUTHENTICATE PLAIN \S+$/);
    const decoded = Buffer.from(sent.split(' ')[3] ?? '', 'base64');
    expect(decoded.equals(Buffer.concat([Buffer.from('\0plain\0'), Buffer.from('p\u00e4ss"\\ ~', 'utf8')]))).toBe(true);
  });

  test('without SASL-IR a complex password goes as a synchronising LOGIN literal', async () => {
    const before = fakes['nosaslir']?.connections.length ?? 0;
    const c = await greeted(px);
    c.write('t1 LOGIN nosaslir "p\u00e4ss"\r\n');
    expect((await c.until('t1')).at(-1)).toBe('t1 OK [CAPABILITY IMAP4rev1] literal received');
    c.close();
    const rec = fakes['nosaslir']?.connections[before]?.received ?? [];
    expect(rec.find((l) => l.startsWith('L '))).toBe('L LOGIN nosaslir {5}');
    expect(Buffer.from(rec.at(-1) ?? '', 'latin1').equals(Buffer.from('p\u00e4ss', 'utf8'))).toBe(true);
  });

  test('master user: AUTHENTICATE PLAIN with the user as authorization id', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const { c, lines } = await login('master', 'whatever');
    expect(lines.at(-1)).toMatch(/^t1 OK /);
    c.close();
    const sent = fakes['plain']?.connections[before]?.received.find((l) => l.startsWith('L ')) ?? '';
    expect(Buffer.from(sent.split(' ')[3] ?? '', 'base64').toString()).toBe('target\0admin\0admin-secret');
  });

  test('pipelining: LOGIN follows ID at once; proxy_nopipelining waits for the ID reply', async () => {
    const piped = await login('piped', 'pw');
    expect(piped.lines.at(-1)).toBe('t1 OK [CAPABILITY IMAP4rev1] before-id');
    piped.c.close();
    const unpiped = await login('unpiped', 'pw');
    expect(unpiped.lines.at(-1)).toBe('t1 OK [CAPABILITY IMAP4rev1] after-id');
    unpiped.c.close();
  });

  test('a trusted client lowering x-proxy-ttl to 1 makes the next hop refuse as a loop', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const c = await greeted(px, 'imap', { from: '127.0.0.6' });
    c.write('i1 ID ("x-proxy-ttl" "1" "x-originating-ip" "192.0.2.9")\r\n');
    await c.until('i1');
    c.write('t1 LOGIN plain pw\r\n');
    expect(await c.line()).toBe('t1 NO [SERVERBUG] Account is temporarily unavailable.');
    expect(fakes['plain']?.connections.length).toBe(before);
    c.close();
    const refusal = await px.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('TTL reached zero'));
    expect(refusal.user).toBe('plain');
  });

  test('an untrusted client cannot forward an address or a TTL', async () => {
    const before = fakes['plain']?.connections.length ?? 0;
    const c = await greeted(px);
    c.write('i1 ID ("x-proxy-ttl" "1" "x-originating-ip" "192.0.2.9")\r\n');
    await c.until('i1');
    c.write('t1 LOGIN plain pw\r\n');
    expect((await c.until('t1')).at(-1)).toMatch(/^t1 OK /);
    c.close();
    const id = fakes['plain']?.connections[before]?.received.find((l) => l.startsWith('I ID ')) ?? '';
    expect(id).toMatch(/"x-originating-ip" "127\.0\.0\.5"/);
    expect(id).toMatch(/"x-proxy-ttl" "4"/);
  });
});
