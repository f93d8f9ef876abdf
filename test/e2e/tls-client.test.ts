/**
 * TLS on the client leg with real clients (python3 ssl, openssl s_client, imapflow): which
 * certificate each server name gets (exact, wildcard, none → default; implicit, IMAP STARTTLS
 * and POP3 STLS), RSA and ECDSA certificates side by side, key passwords, chains with an
 * intermediate, per-listener and per-protocol certificates, protocol versions, cipher lists and
 * server preference, no renegotiation, session resumption, ALPN (ALPACA), strict SNI.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LOOPBACK_SETTINGS, passdbEntry, testConfig, type Settings } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert, type TestCa } from '../support/tlsca.js';
import { makeTempDir } from '../support/tmp.js';
import { pyTls, pyTlsOk, sClient, seenCert } from './tls-tools.js';

let ca: TestCa;
let backend: DovecotBackend;
let px: RunningPortier;
const c: Record<string, IssuedCert> = {};

async function issueAll(): Promise<void> {
  ca = await sharedTestCa();
  c['def'] = await ca.issue('default.test', { sans: ['default.test', '127.0.0.1'] });
  c['defEc'] = await ca.issue('default.test', { sans: ['default.test', '127.0.0.1'], keyType: 'ecdsa' });
  c['mail'] = await ca.issue('mail.example.org', { sans: ['mail.example.org', 'imap.example.org'] });
  c['mailEc'] = await ca.issue('mail.example.org', { sans: ['mail.example.org', 'imap.example.org'], keyType: 'ecdsa' });
  c['wild'] = await ca.issue('*.example.net', { intermediate: true, keyPassword: 'wild-pass-9' });
  c['listener'] = await ca.issue('imaps2.listener.test');
  c['pop3'] = await ca.issue('pop3.service.test');
}

const f = (name: string, part: 'certFile' | 'keyFile' | 'chainFile'): string => {
  const cert = c[name];
  if (cert === undefined) throw new Error(`no cert ${name}`);
  return cert[part];
};

function users(b: DovecotBackend): string {
  return `alice:{PLAIN}alice-pw::::::proxy=y host=${b.host} port=${b.ports.imap}\n`;
}

/** Default RSA+ECDSA certificates, per-name ones (local_name), a per-listener and a per-protocol one. */
function mainConfig(settings: Settings = {}): string {
  return testConfig(['imap', 'pop3'], {
    settings: {
      ssl: 'yes',
      ssl_cert: f('def', 'certFile'),
      ssl_key: f('def', 'keyFile'),
      ssl_alt_cert: f('defEc', 'certFile'),
      ssl_alt_key: f('defEc', 'keyFile'),
      disable_plaintext_auth: 'yes',
      log_level: 'debug',
      ...settings,
    },
    extra: `local_name:
  mail.example.org imap.example.org:
    ssl_cert: ${f('mail', 'certFile')}
    ssl_key: ${f('mail', 'keyFile')}
    ssl_alt_cert: ${f('mailEc', 'certFile')}
    ssl_alt_key: ${f('mailEc', 'keyFile')}
  "*.example.net":
    ssl_cert: ${f('wild', 'chainFile')}
    ssl_key: ${f('wild', 'keyFile')}
    ssl_key_password: wild-pass-9
`,
    service: `service:
  imap-login:
    inet_listener:
      imap: { port: {{port}} }
      imaps: { port: {{port}} }
      imaps2: { port: {{port}}, ssl: yes, ssl_cert: ${f('listener', 'certFile')}, ssl_key: ${f('listener', 'keyFile')} }
  pop3-login:
    ssl_cert: ${f('pop3', 'certFile')}
    ssl_key: ${f('pop3', 'keyFile')}
    inet_listener:
      pop3: { port: {{port}} }
      pop3s: { port: {{port}} }
`,
  });
}

beforeAll(async () => {
  await issueAll();
  backend = await startDovecot({ address: '127.0.0.2', users: [{ user: 'alice', password: 'alice-pw' }], trustedNetworks: ['127.0.0.0/8'] });
  px = await startPortier(mainConfig(), { users: users(backend) });
});

afterAll(async () => {
  await px?.stop();
  await backend?.stop();
});

describe('which certificate a client gets', () => {
  // [SNI sent, CN expected, check the host name too]
  const cases: [string | undefined, string, boolean][] = [
    [undefined, 'default.test', false],
    ['mail.example.org', 'mail.example.org', true],
    ['IMAP.example.org', 'mail.example.org', true],
    ['a.example.net', '*.example.net', true],
    ['a.b.example.net', 'default.test', false],
    ['unknown.test', 'default.test', false],
  ];

  test.each(cases)('implicit TLS (imaps), SNI %s → %s', async (sni, cn, checkHostname) => {
    const r = await pyTlsOk({ port: px.port('imaps'), ca: ca.caFile, checkHostname, ...(sni ? { sni } : {}) });
    expect(seenCert(r.der).cn).toBe(cn);
    expect(r.greeting).toMatch(/^\* OK \[CAPABILITY .*AUTH=PLAIN/);
  });

  test.each(cases)('IMAP STARTTLS, SNI %s → %s', async (sni, cn, checkHostname) => {
    const r = await pyTlsOk({ port: px.port('imap'), starttls: 'imap', ca: ca.caFile, checkHostname, ...(sni ? { sni } : {}) });
    expect(r.starttls).toBe('S OK Begin TLS negotiation now.');
    expect(seenCert(r.der).cn).toBe(cn);
  });

  test('POP3 STLS: SNI names as on IMAP; without one the protocol (pop3-login) certificate', async () => {
    const none = await pyTlsOk({ port: px.port('pop3'), starttls: 'pop3', ca: ca.caFile });
    expect(none.starttls).toBe('+OK Begin TLS negotiation now.');
    expect(seenCert(none.der).cn).toBe('pop3.service.test');
    const named = await pyTlsOk({ port: px.port('pop3'), starttls: 'pop3', ca: ca.caFile, sni: 'mail.example.org', checkHostname: true });
    expect(seenCert(named.der).cn).toBe('mail.example.org');
    const implicit = await pyTlsOk({ port: px.port('pop3s'), ca: ca.caFile, sni: 'x.example.net', checkHostname: true });
    expect(seenCert(implicit.der).cn).toBe('*.example.net');
  });

  test('the wildcard certificate comes with its intermediate: a client trusting only the root verifies it', async () => {
    const r = await pyTlsOk({ port: px.port('imaps'), ca: ca.caFile, sni: 'deep.example.net', checkHostname: true });
    expect(seenCert(r.der).issuerCn).toBe('portier test intermediate CA');
    const out = await sClient(['-connect', `127.0.0.1:${px.port('imaps')}`, '-servername', 'deep.example.net', '-CAfile', ca.caFile, '-verify_return_error', '-showcerts']);
    expect(out).toMatch(/1 s:.*CN ?= ?portier test intermediate CA/);
    expect(out).toMatch(/Verify return code: 0 \(ok\)/);
  });

  test('a per-listener certificate is what clients without SNI get on that listener; SNI still picks by name', async () => {
    const none = await pyTlsOk({ port: px.port('imaps2'), ca: ca.caFile });
    expect(seenCert(none.der).cn).toBe('imaps2.listener.test');
    const named = await pyTlsOk({ port: px.port('imaps2'), ca: ca.caFile, sni: 'mail.example.org' });
    expect(seenCert(named.der).cn).toBe('mail.example.org');
  });

  test('imapflow over imaps with SNI, verifying the certificate, logs in through to Dovecot', async () => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: px.port('imaps'),
      secure: true,
      auth: { user: 'alice', pass: 'alice-pw' },
      // imapflow hands these to tls.connect, which takes net.connect's localAddress as well.
      tls: { ca: [await readFile(ca.caFile, 'utf8')], servername: 'imap.example.org', rejectUnauthorized: true, ...{ localAddress: '127.0.0.5' } },
      logger: false,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
    });
    await client.connect();
    const box = await client.mailboxOpen('INBOX');
    expect(box.path).toBe('INBOX');
    await client.logout();
    const seen = await px.waitForLog((l) => l.msg === 'TLS established' && l['sni'] === 'imap.example.org');
    expect(seen['alpn']).toBeUndefined();
  });
});

describe('RSA and ECDSA certificates side by side', () => {
  test.each([
    ['mail.example.org', ['-servername', 'mail.example.org'], 'mail.example.org'],
    ['the default', ['-noservername'], 'default.test'],
  ])('TLS 1.3 (openssl): an ECDSA-only client gets the ECDSA certificate of %s, an RSA-only client the RSA one', async (_what, sni, cn) => {
    const subject = new RegExp(`subject=.*CN ?= ?${cn.replaceAll('.', '\\.')}(,|\\n)`);
    const base = ['-connect', `127.0.0.1:${px.port('imaps')}`, ...sni, '-CAfile', ca.caFile, '-verify_return_error'];
    const ec = await sClient([...base, '-sigalgs', 'ECDSA+SHA256:ECDSA+SHA384']);
    expect(ec).toMatch(/Peer signature type: ECDSA/);
    expect(ec).toMatch(/Server public key is 256 bit/);
    expect(ec).toMatch(/Verify return code: 0 \(ok\)/);
    expect(ec).toMatch(subject);
    const rsa = await sClient([...base, '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256']);
    expect(rsa).toMatch(/Peer signature type: RSA-PSS/);
    expect(rsa).toMatch(/Server public key is 2048 bit/);
    expect(rsa).toMatch(subject);
  });

  test('TLS 1.2 (python): ECDHE-ECDSA ciphers get the ECDSA certificate, ECDHE-RSA ciphers the RSA one', async () => {
    const ec = await pyTlsOk({ port: px.port('imaps'), sni: 'mail.example.org', maxVersion: '1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(seenCert(ec.der)).toMatchObject({ cn: 'mail.example.org', keyType: 'ec' });
    expect(ec.version).toBe('TLSv1.2');
    const rsa = await pyTlsOk({ port: px.port('imaps'), sni: 'mail.example.org', maxVersion: '1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    expect(seenCert(rsa.der)).toMatchObject({ cn: 'mail.example.org', keyType: 'rsa' });
    const defEc = await pyTlsOk({ port: px.port('imaps'), maxVersion: '1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' });
    expect(seenCert(defEc.der)).toMatchObject({ cn: 'default.test', keyType: 'ec' });
  });
});

describe('protocol settings', () => {
  test('TLS 1.2 and 1.3 are served, older versions refused (ssl_min_protocol default TLSv1.2)', async () => {
    const old = await sClient(['-connect', `127.0.0.1:${px.port('imaps')}`, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    expect(old).toMatch(/alert protocol version|unsupported protocol|no protocols available/);
    expect(old).not.toMatch(/\* OK /);
    const v12 = await pyTlsOk({ port: px.port('imaps'), maxVersion: '1.2' });
    expect(v12.version).toBe('TLSv1.2');
    const v13 = await pyTlsOk({ port: px.port('imaps') });
    expect(v13.version).toBe('TLSv1.3');
  });

  test('no renegotiation: a client asking for one (openssl R) is refused', async () => {
    const out = await sClient(['-connect', `127.0.0.1:${px.port('imaps')}`, '-tls1_2'], { input: 'R\n', delayMs: 600, holdMs: 1000 });
    expect(out).toMatch(/\* OK /);
    expect(out).toMatch(/RENEGOTIATING/);
    expect(out).toMatch(/no renegotiation/);
  });

  test.each([['TLS 1.3', []], ['TLS 1.2', ['-tls1_2']]])('%s session resumption: a reconnecting client resumes with its ticket (openssl -sess_out / -sess_in)', async (_v, version) => {
    const dir = await makeTempDir('portier-sess-');
    const sess = `${dir}/session.pem`;
    const first = await sClient(['-connect', `127.0.0.1:${px.port('imaps')}`, '-servername', 'mail.example.org', ...version, '-sess_out', sess]);
    expect(first).toMatch(/New, TLSv1\.[23]/);
    const second = await sClient(['-connect', `127.0.0.1:${px.port('imaps')}`, '-servername', 'mail.example.org', ...version, '-sess_in', sess]);
    expect(second).toMatch(/Reused, TLSv1\.[23]/);
    expect(second).toMatch(/\* OK \[CAPABILITY/);
    await px.waitForLog((l) => l.msg === 'TLS established' && l['resumed'] === true);
  });

  test('resumption across cluster workers: a ticket issued by one worker is accepted by another (the real command, workers: 2)', async () => {
    const dir = await makeTempDir('portier-workers-');
    const port = await freePort('127.0.0.1');
    const file = join(dir, 'portier.yaml');
    writeFileSync(join(dir, 'users'), '');
    writeFileSync(
      file,
      testConfig(['imap'], {
        base: LOOPBACK_SETTINGS,
        settings: { ssl: 'yes', ssl_cert: f('def', 'certFile'), ssl_key: f('def', 'keyFile'), workers: 2, log_level: 'debug', admin_socket: "''" },
        ports: { imap: 0, imaps: port },
        passdb: passdbEntry('passwd-file', { args: join(dir, 'users') }),
      }),
    );
    const proc = runPortierBin(['serve', '-c', file]);
    try {
      const started = Date.now();
      while ((proc.stdout().match(/"msg":"worker started"/g) ?? []).length < 2) {
        if (Date.now() - started > 20_000 || proc.child.exitCode !== null) throw new Error(`workers did not start:\n${proc.stdout()}\n${proc.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const established = (): { pid: number; resumed: boolean }[] =>
        proc.stdout().split('\n').filter((l) => l.includes('"msg":"TLS established"')).map((l) => JSON.parse(l) as { pid: number; resumed: boolean });
      const sess = join(dir, 'session.pem');
      expect(await sClient(['-connect', `127.0.0.1:${port}`, '-sess_out', sess])).toMatch(/New, TLSv1\.3/);
      const issuer = established()[0]?.pid;
      expect(issuer).toBeDefined();
      // The kernel spreads connections over the workers: try until one lands on the other worker.
      for (let i = 0; i < 30 && !established().some((e) => e.pid !== issuer); i++) {
        expect(await sClient(['-connect', `127.0.0.1:${port}`, '-sess_in', sess], { holdMs: 300 })).toMatch(/Reused, TLSv1\.3/);
      }
      const elsewhere = established().filter((e) => e.pid !== issuer);
      expect(elsewhere.length).toBeGreaterThan(0);
      expect(elsewhere.every((e) => e.resumed)).toBe(true);
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });

  test('resumption after STARTTLS too (python, TLS 1.2)', async () => {
    const [a, b] = await pyTls({ port: px.port('imap'), starttls: 'imap', maxVersion: '1.2', connections: 2, commands: [['n NOOP', 'n']] });
    expect(a?.reused).toBe(false);
    expect(b?.reused).toBe(true);
    expect(b?.replies).toEqual([['n OK NOOP completed.']]);
  });
});

describe('cipher list and server preference', () => {
  let prefer: RunningPortier;
  let clientOrder: RunningPortier;
  const config = (preferServer: boolean): string =>
    testConfig(['imap'], {
      base: LOOPBACK_SETTINGS,
      settings: {
        ssl: 'yes',
        ssl_cert: f('def', 'certFile'),
        ssl_key: f('def', 'keyFile'),
        ssl_cipher_list: 'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256',
        ssl_prefer_server_ciphers: preferServer ? 'yes' : 'no',
      },
      ports: { imap: 0, imaps: '{{port}}' },
    });
  beforeAll(async () => {
    prefer = await startPortier(config(true), { users: '' });
    clientOrder = await startPortier(config(false), { users: '' });
  });
  afterAll(async () => {
    await prefer?.stop();
    await clientOrder?.stop();
  });

  const offered = 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384';
  test('ssl_prefer_server_ciphers: yes picks the server’s first choice, no the client’s', async () => {
    const p = await pyTlsOk({ port: prefer.port('imaps'), maxVersion: '1.2', ciphers: offered });
    expect(p.cipher).toBe('ECDHE-RSA-AES256-GCM-SHA384');
    const q = await pyTlsOk({ port: clientOrder.port('imaps'), maxVersion: '1.2', ciphers: offered });
    expect(q.cipher).toBe('ECDHE-RSA-AES128-GCM-SHA256');
  });

  test('a TLS 1.2 client offering only ciphers outside ssl_cipher_list is refused; TLS 1.3 keeps its suites', async () => {
    const [r] = await pyTls({ port: prefer.port('imaps'), maxVersion: '1.2', ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' });
    expect(r?.error).toMatch(/SSLError|handshake failure/i);
    const v13 = await pyTlsOk({ port: prefer.port('imaps') });
    expect(v13.version).toBe('TLSv1.3');
  });
});

describe('ALPN (ALPACA defence)', () => {
  const alpn = (port: number, ids: string[] | undefined, extra: string[] = []): Promise<string> =>
    sClient(['-connect', `127.0.0.1:${port}`, ...(ids ? ['-alpn', ids.join(',')] : []), ...extra]);

  test('imaps advertises only imap: http/1.1 is refused with no_application_protocol, imap and no ALPN work', async () => {
    const http = await alpn(px.port('imaps'), ['http/1.1']);
    expect(http).toMatch(/alert no application protocol|SSL alert number 120/);
    expect(http).not.toMatch(/\* OK /);
    const both = await alpn(px.port('imaps'), ['http/1.1', 'imap']);
    expect(both).toMatch(/ALPN protocol: imap/);
    const imap = await alpn(px.port('imaps'), ['imap']);
    expect(imap).toMatch(/ALPN protocol: imap/);
    expect(imap).toMatch(/\* OK \[CAPABILITY/);
    const none = await alpn(px.port('imaps'), undefined);
    expect(none).toMatch(/No ALPN negotiated/);
    expect(none).toMatch(/\* OK \[CAPABILITY/);
  });

  test('pop3s advertises only pop3: an IMAP client’s ALPN is refused there, pop3 accepted', async () => {
    const imap = await alpn(px.port('pop3s'), ['imap']);
    expect(imap).toMatch(/alert no application protocol|SSL alert number 120/);
    const pop3 = await alpn(px.port('pop3s'), ['pop3']);
    expect(pop3).toMatch(/ALPN protocol: pop3/);
    expect(pop3).toMatch(/\+OK /);
  });

  test('the same rule after STARTTLS and STLS (python)', async () => {
    const [bad] = await pyTls({ port: px.port('imap'), starttls: 'imap', alpn: ['http/1.1'] });
    expect(bad?.error).toMatch(/NO_APPLICATION_PROTOCOL|no application protocol/i);
    const good = await pyTlsOk({ port: px.port('imap'), starttls: 'imap', alpn: ['imap'] });
    expect(good.alpn).toBe('imap');
    const [pop3bad] = await pyTls({ port: px.port('pop3'), starttls: 'pop3', alpn: ['imap'] });
    expect(pop3bad?.error).toMatch(/NO_APPLICATION_PROTOCOL|no application protocol/i);
  });
});

describe('strict SNI (ssl_sni_strict)', () => {
  let strict: RunningPortier;
  beforeAll(async () => {
    strict = await startPortier(mainConfig({ ssl_sni_strict: 'yes' }), { users: users(backend) });
  });
  afterAll(async () => strict?.stop());

  test('an unknown server name gets no certificate at all; known names and clients without SNI are served', async () => {
    const [unknown] = await pyTls({ port: strict.port('imaps'), sni: 'unknown.test' });
    expect(unknown?.error).toBeDefined();
    expect(unknown?.der).toBeUndefined();
    const out = await sClient(['-connect', `127.0.0.1:${strict.port('imaps')}`, '-servername', 'evil.example.com']);
    expect(out).toMatch(/alert unrecognized name|SSL alert number 112/);
    expect(out).not.toMatch(/BEGIN CERTIFICATE|\* OK /);
    expect(seenCert((await pyTlsOk({ port: strict.port('imaps'), sni: 'mail.example.org' })).der).cn).toBe('mail.example.org');
    expect(seenCert((await pyTlsOk({ port: strict.port('imaps'), sni: 'default.test' })).der).cn).toBe('default.test');
    expect(seenCert((await pyTlsOk({ port: strict.port('imaps') })).der).cn).toBe('default.test');
    await strict.waitForLog((l) => /ssl_sni_strict/.test(l.msg) && l['sni'] === 'evil.example.com');
  });
});

describe('one certificate pair for every name (no local_name, not strict)', () => {
  let single: RunningPortier;
  beforeAll(async () => {
    const dir = await makeTempDir('tls-single-');
    // Per-name passwd-files: the login works only if the server name reached the passdb.
    writeFileSync(join(dir, 'users-imap.single.test'), users(backend));
    const yaml = testConfig(['imap'], {
      settings: { ssl: 'yes', ssl_cert: f('def', 'certFile'), ssl_key: f('def', 'keyFile'), ssl_alt_cert: f('defEc', 'certFile'), ssl_alt_key: f('defEc', 'keyFile') },
      ports: { imaps: '{{port}}' },
      passdb: passdbEntry('passwd-file', { args: `scheme=PLAIN ${dir}/users-%{local_name}` }),
    });
    single = await startPortier(yaml);
  });
  afterAll(async () => single?.stop());

  // Here the TLS stack reads the ClientHello itself (no pre-read in JS); the server name it
  // saw is still the session's local name, and both certificate types are still offered.
  test('implicit TLS and STARTTLS: the SNI name reaches %{local_name}, RSA and ECDSA both served', async () => {
    const login: [string, string | null][] = [['a LOGIN alice alice-pw', 'a']];
    const implicit = await pyTlsOk({ port: single.port('imaps'), sni: 'imap.single.test', commands: login });
    expect(implicit.replies?.[0]?.at(-1)).toMatch(/^a OK /);
    const upgraded = await pyTlsOk({ port: single.port('imap'), starttls: 'imap', sni: 'imap.single.test', commands: login });
    expect(upgraded.replies?.[0]?.at(-1)).toMatch(/^a OK /);
    // Another name: another (missing) passwd-file, so no login.
    const other = await pyTlsOk({ port: single.port('imaps'), sni: 'other.single.test', commands: login });
    expect(other.replies?.[0]?.at(-1)).toMatch(/^a NO /);
    const ecdsa = await sClient(['-connect', `127.0.0.1:${single.port('imaps')}`, '-sigalgs', 'ECDSA+SHA256']);
    expect(ecdsa).toMatch(/Peer signature type: ECDSA/);
    const rsa = await sClient(['-connect', `127.0.0.1:${single.port('imaps')}`, '-sigalgs', 'RSA-PSS+SHA256:RSA+SHA256']);
    expect(rsa).toMatch(/Peer signature type: RSA/);
  });
});
