/**
 * What TLS changes about logging in, with real clients and a real Dovecot behind portier:
 * ssl = no | yes | required with disable_plaintext_auth (LOGINDISABLED, refusals before TLS,
 * trusted networks and local connections exempt), the STARTTLS injection defence for IMAP and
 * POP3, client certificates (ssl_verify_client_cert, auth_ssl_require_client_cert,
 * auth_ssl_username_from_cert, SASL EXTERNAL), and certificate reloads (file change, SIGHUP)
 * while sessions stay connected.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted } from '../support/clients.js';
import { testConfig, type ListenerName, type ListenerPort } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import type { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, startPortier, type RunningPortier } from '../support/portier.js';
import { makeTestCa, sharedTestCa, type IssuedCert, type TestCa } from '../support/tlsca.js';
import { makeTempDir } from '../support/tmp.js';
import { pyTlsOk, seenCert } from './tls-tools.js';

const CLIENT = '127.0.0.5';
const TRUSTED = '127.0.0.6';
let ca: TestCa;
let caPem: string;
let server: IssuedCert;
let backend: DovecotBackend;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

function users(b: DovecotBackend): string {
  const to = `proxy=y host=${b.host} port=${b.ports.imap}`;
  return [`alice:{PLAIN}alice-pw::::::${to} pass=alice-pw`, `bob:{PLAIN}bob-pw::::::${to}`, ''].join('\n');
}

interface ConfigOptions {
  readonly ssl: 'no' | 'yes' | 'required';
  readonly plaintext: boolean;
  /** More top-level settings (YAML lines). */
  readonly extra?: string;
  readonly mechanisms?: string;
  /** Over imap, pop3 and (unless ssl is no) imaps on fresh ports. */
  readonly ports?: Partial<Record<ListenerName, ListenerPort>>;
}

function config(opts: ConfigOptions): string {
  return testConfig(['imap', 'pop3'], {
    settings: {
      ssl: opts.ssl,
      ...(opts.ssl === 'no' ? {} : { ssl_cert: server.certFile, ssl_key: server.keyFile }),
      disable_plaintext_auth: opts.plaintext ? 'no' : 'yes',
      login_trusted_networks: TRUSTED,
      auth_mechanisms: opts.mechanisms ?? 'plain login cram-md5',
      log_level: 'debug',
    },
    extra: opts.extra ?? '',
    ports: { imaps: opts.ssl === 'no' ? 0 : '{{port}}', ...opts.ports },
  });
}

async function imap(p: RunningPortier, from = CLIENT, host = '127.0.0.1'): Promise<LineClient> {
  const c = await greeted(p, 'imap', { from, host });
  expect(c.greeting).toMatch(/^\* OK \[CAPABILITY /);
  return c;
}

async function caps(c: LineClient): Promise<string[]> {
  c.write('c CAPABILITY\r\n');
  const lines = await c.until('c');
  return (lines.find((l) => l.startsWith('* CAPABILITY ')) ?? '').split(' ').slice(2);
}

async function starttls(c: LineClient, opts: { cert?: IssuedCert } = {}): Promise<void> {
  c.write('s STARTTLS\r\n');
  expect(await c.line()).toBe('s OK Begin TLS negotiation now.');
  await c.starttls({ ca: [caPem], servername: 'localhost', ...(opts.cert ? { cert: readFileSync(opts.cert.certFile), key: readFileSync(opts.cert.keyFile) } : {}) });
}

beforeAll(async () => {
  ca = await sharedTestCa();
  caPem = readFileSync(ca.caFile, 'utf8');
  server = await ca.issue('portier-auth', { sans: ['localhost', '127.0.0.1'] });
  backend = await startDovecot({
    address: '127.0.0.2',
    users: [{ user: 'alice', password: 'alice-pw' }, { user: 'bob', password: 'bob-pw' }],
    trustedNetworks: ['127.0.0.0/8'],
  });
});

afterAll(async () => {
  await backend?.stop();
});

describe('ssl = yes with disable_plaintext_auth = yes', () => {
  let px: RunningPortier;
  beforeAll(async () => {
    px = await startPortier(config({ ssl: 'yes', plaintext: false }), { users: users(backend) });
  });
  afterAll(async () => px?.stop());

  test('before TLS: STARTTLS and LOGINDISABLED, no plaintext mechanisms; LOGIN and PLAIN refused', async () => {
    const c = await imap(px);
    const pre = await caps(c);
    expect(pre).toEqual(expect.arrayContaining(['STARTTLS', 'LOGINDISABLED', 'AUTH=CRAM-MD5']));
    expect(pre).not.toContain('AUTH=PLAIN');
    expect(pre).not.toContain('AUTH=LOGIN');
    c.write('a LOGIN alice alice-pw\r\n');
    expect(await c.line()).toBe('a NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    c.write(`b AUTHENTICATE PLAIN ${b64('\0alice\0alice-pw')}\r\n`);
    expect(await c.line()).toBe('b NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    await starttls(c);
    const post = await caps(c);
    expect(post).toEqual(expect.arrayContaining(['AUTH=PLAIN', 'AUTH=LOGIN']));
    expect(post).not.toContain('LOGINDISABLED');
    expect(post).not.toContain('STARTTLS');
    c.write('d LOGIN alice alice-pw\r\n');
    expect((await c.until('d')).at(-1)).toMatch(/^d OK /);
    c.close();
  });

  test('login_trusted_networks and connections from the host itself may log in in plaintext', async () => {
    for (const [from, host] of [[TRUSTED, '127.0.0.1'], ['127.0.0.1', '127.0.0.1']] as const) {
      const c = await imap(px, from, host);
      const pre = await caps(c);
      expect(pre).not.toContain('LOGINDISABLED');
      expect(pre).toContain('AUTH=PLAIN');
      c.write('a LOGIN bob bob-pw\r\n');
      expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
      c.close();
    }
  });

  test('POP3: no USER or PLAIN before STLS (-ERR), both after', async () => {
    const c = await greeted(px, 'pop3');
    c.write('USER alice\r\n');
    expect(await c.line()).toBe('-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
    c.write('STLS\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation now.');
    await c.starttls({ ca: [caPem], servername: 'localhost' });
    c.write('USER alice\r\n');
    expect(await c.line()).toBe('+OK');
    c.close();
  });
});

describe('ssl = required', () => {
  let px: RunningPortier;
  beforeAll(async () => {
    px = await startPortier(config({ ssl: 'required', plaintext: true }), { users: users(backend) });
  });
  afterAll(async () => px?.stop());

  test('no authentication at all before TLS, not even CRAM-MD5, even with disable_plaintext_auth = no', async () => {
    const c = await imap(px);
    const pre = await caps(c);
    expect(pre).toEqual(expect.arrayContaining(['STARTTLS', 'LOGINDISABLED']));
    expect(pre.filter((w) => w.startsWith('AUTH='))).toEqual([]);
    c.write('a LOGIN alice alice-pw\r\n');
    expect(await c.line()).toBe('a NO [PRIVACYREQUIRED] Authentication requires TLS: use STARTTLS first.');
    c.write('b AUTHENTICATE CRAM-MD5\r\n');
    expect(await c.line()).toBe('b NO [PRIVACYREQUIRED] Authentication requires TLS: use STARTTLS first.');
    await starttls(c);
    expect(await caps(c)).toEqual(expect.arrayContaining(['AUTH=PLAIN', 'AUTH=CRAM-MD5']));
    c.write('d LOGIN alice alice-pw\r\n');
    expect((await c.until('d')).at(-1)).toMatch(/^d OK /);
    c.close();
  });

  test('POP3 before STLS: USER and AUTH refused; trusted and local clients are exempt', async () => {
    const c = await greeted(px, 'pop3');
    c.write('USER alice\r\nAUTH CRAM-MD5\r\n');
    expect(await c.line()).toBe('-ERR [AUTH] Authentication requires TLS: use STLS first.');
    expect(await c.line()).toBe('-ERR [AUTH] Authentication requires TLS: use STLS first.');
    c.close();
    const t = await imap(px, TRUSTED);
    t.write('a LOGIN bob bob-pw\r\n');
    expect((await t.until('a')).at(-1)).toMatch(/^a OK /);
    t.close();
  });
});

describe('ssl = no', () => {
  let px: RunningPortier;
  beforeAll(async () => {
    px = await startPortier(config({ ssl: 'no', plaintext: true }), { users: users(backend) });
  });
  afterAll(async () => px?.stop());

  test('no STARTTLS offered or accepted, no implicit-TLS listener; plaintext logins work', async () => {
    expect(px.portier.addresses().map((a) => a.name).sort()).toEqual(['imap', 'pop3']);
    const c = await imap(px);
    const pre = await caps(c);
    expect(pre).not.toContain('STARTTLS');
    expect(pre).not.toContain('LOGINDISABLED');
    c.write('s STARTTLS\r\n');
    expect(await c.line()).toBe('s BAD TLS support is not enabled.');
    c.write('a LOGIN bob bob-pw\r\n');
    expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
    c.close();
  });
});

describe('STARTTLS injection: input pipelined after STARTTLS is never run', () => {
  let px: RunningPortier;
  beforeAll(async () => {
    px = await startPortier(config({ ssl: 'yes', plaintext: true }), { users: users(backend) });
  });
  afterAll(async () => px?.stop());

  test('IMAP: `a STARTTLS` and `b LOGIN` in one packet: b gets no answer and logs nobody in', async () => {
    const c = await imap(px);
    c.write('a STARTTLS\r\nb LOGIN bob bob-pw\r\n');
    expect(await c.line()).toBe('a OK Begin TLS negotiation now.');
    await c.starttls({ ca: [caPem], servername: 'localhost' });
    c.write('c CAPABILITY\r\n');
    const lines = await c.until('c');
    expect(lines.some((l) => l.startsWith('b '))).toBe(false);
    // Still before login: the pre-login capability list with AUTH=, not the backend's.
    expect(lines[0]).toMatch(/^\* CAPABILITY .*AUTH=PLAIN/);
    expect(lines.at(-1)).toBe('c OK Pre-login capabilities listed, post-login capabilities have more.');
    await px.waitForLog((l) => l.msg === 'discarded input pipelined after STARTTLS (possible injection)' && l['bytes'] === 'b LOGIN bob bob-pw\r\n'.length);
    expect(px.logs().some((l) => /Started proxying/.test(l.msg))).toBe(false);
    c.close();
  });

  test('POP3: `STLS`, `USER` and `PASS` in one packet: nothing after STLS is answered', async () => {
    const c = await greeted(px, 'pop3');
    c.write('STLS\r\nUSER bob\r\nPASS bob-pw\r\n');
    expect(await c.line()).toBe('+OK Begin TLS negotiation now.');
    await c.starttls({ ca: [caPem], servername: 'localhost' });
    c.write('PASS bob-pw\r\n');
    // Had USER run after the handshake, this PASS would log in.
    expect(await c.line()).toBe('-ERR No username given.');
    await px.waitForLog((l) => l.msg === 'discarded input pipelined after STLS (possible injection)');
    c.close();
  });
});

describe('client certificates', () => {
  let px: RunningPortier;
  let alice: IssuedCert;
  let foreign: IssuedCert;
  let selfSigned: IssuedCert;
  beforeAll(async () => {
    alice = await ca.issue('alice');
    selfSigned = await ca.issue('alice', { selfSigned: true });
    const other = await makeTestCa(await makeTempDir('portier-other-ca-'));
    foreign = await other.issue('alice');
    px = await startPortier(
      config({
        ssl: 'yes',
        plaintext: false,
        mechanisms: 'plain login external',
        extra: `ssl_ca: ${ca.caFile}\nssl_verify_client_cert: yes\nauth_ssl_require_client_cert: yes\nauth_ssl_username_from_cert: yes\n`,
      }),
      { users: users(backend) },
    );
  });
  afterAll(async () => px?.stop());

  async function tlsClient(cert: IssuedCert | undefined): Promise<LineClient> {
    return greeted(px.port('imaps'), 'imap', {
      tls: { ca: [caPem], servername: 'localhost', ...(cert ? { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) } : {}) },
    });
  }

  test('a verified certificate names the user, whatever name the client typed (auth_ssl_username_from_cert)', async () => {
    const c = await tlsClient(alice);
    c.write('a LOGIN somebody-else alice-pw\r\n');
    expect((await c.until('a')).at(-1)).toMatch(/^a OK /);
    const started = await px.waitForLog((l) => /Started proxying/.test(l.msg) && l['user'] === 'alice');
    expect(started['destuser']).toBe('alice');
    await px.waitForLog((l) => l.msg === 'TLS established' && (l['client_cert'] as { valid?: boolean } | undefined)?.valid === true);
    c.close();
  });

  test.each([
    ['no certificate', undefined, /no client certificate/],
    ['a certificate from another CA', 'foreign', /client certificate not valid/],
    ['a self-signed certificate', 'self', /client certificate not valid/],
  ] as const)('%s: the login is refused (auth_ssl_require_client_cert), with the reason in the log', async (_what, which, why) => {
    const cert = which === 'foreign' ? foreign : which === 'self' ? selfSigned : undefined;
    const c = await tlsClient(cert);
    c.write('a LOGIN alice alice-pw\r\n');
    expect(await c.line()).toBe('a NO [AUTHENTICATIONFAILED] Authentication failed.');
    await px.waitForLog((l) => l.msg === 'login refused: failed' && why.test(String(l['why'])));
    c.close();
  });

  test('SASL EXTERNAL: offered only with a verified certificate, and logs the certificate’s user in', async () => {
    const none = await tlsClient(undefined);
    expect(await caps(none)).not.toContain('AUTH=EXTERNAL');
    none.close();
    const bad = await tlsClient(foreign);
    expect(await caps(bad)).not.toContain('AUTH=EXTERNAL');
    bad.write('e AUTHENTICATE EXTERNAL =\r\n');
    expect(await bad.line()).toBe('e NO Unsupported authentication mechanism.');
    bad.close();
    const c = await tlsClient(alice);
    expect(await caps(c)).toContain('AUTH=EXTERNAL');
    c.write('e AUTHENTICATE EXTERNAL =\r\n');
    const reply = (await c.until('e')).at(-1);
    expect(reply).toMatch(/^e OK /);
    await px.waitForLog((l) => /Started proxying/.test(l.msg) && l['user'] === 'alice');
    c.close();
  });
});

describe('certificate reloads keep connected sessions', () => {
  let old: IssuedCert;
  let renewed: IssuedCert;
  beforeAll(async () => {
    old = await ca.issue('reload.example.org', { sans: ['reload.example.org'] });
    renewed = await ca.issue('reload.example.org', { sans: ['reload.example.org'] });
  });

  /** Replace a file the way cert-manager and certbot do: write aside, then rename over it. */
  function replace(dir: string, name: string, from: string): void {
    const tmp = join(dir, `.${name}.tmp`);
    copyFileSync(from, tmp);
    renameSync(tmp, join(dir, name));
  }

  const serialOf = (cert: IssuedCert): string => new X509Certificate(readFileSync(cert.certFile)).serialNumber;

  async function serialFor(port: number): Promise<string> {
    return seenCert((await pyTlsOk({ port, sni: 'reload.example.org', ca: ca.caFile, checkHostname: true })).der).serial;
  }

  async function waitForSerial(port: number, serial: string): Promise<void> {
    const until = Date.now() + 10_000;
    while ((await serialFor(port)) !== serial) {
      if (Date.now() > until) throw new Error(`certificate ${serial} not served within 10 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const reloadConfig = `
local_name:
  reload.example.org:
    ssl_cert: {{dir}}/reload.pem
    ssl_key: {{dir}}/reload.key
`;

  test('on file change: new connections get the new certificate, a spliced and a pre-login session carry on; a bad file keeps the old one', async () => {
    const px = await startPortier(config({ ssl: 'yes', plaintext: false, extra: reloadConfig }), {
      users: users(backend),
      'reload.pem': readFileSync(old.certFile, 'utf8'),
      'reload.key': readFileSync(old.keyFile, 'utf8'),
    });
    try {
      const imaps = px.port('imaps');
      expect(await serialFor(imaps)).toBe(serialOf(old));
      const spliced = await greeted(imaps, 'imap', { tls: { ca: [caPem], servername: 'reload.example.org' } });
      spliced.write('a LOGIN bob bob-pw\r\n');
      expect((await spliced.until('a')).at(-1)).toMatch(/^a OK /);
      const waiting = await greeted(imaps, 'imap', { tls: { ca: [caPem], servername: 'reload.example.org' } });

      replace(px.dir, 'reload.key', renewed.keyFile);
      replace(px.dir, 'reload.pem', renewed.certFile);
      await px.waitForLog((l) => l.msg === 'TLS: certificates reloaded' && l['why'] === 'file changed');
      const renewedSerial = serialOf(renewed);
      await waitForSerial(imaps, renewedSerial);

      spliced.write('n NOOP\r\n');
      expect((await spliced.until('n')).at(-1)).toMatch(/^n OK /);
      waiting.write('c CAPABILITY\r\n');
      expect((await waiting.until('c')).at(-1)).toMatch(/^c OK /);

      writeFileSync(join(px.dir, 'reload.pem'), '-----BEGIN CERTIFICATE-----\ntruncated\n');
      await px.waitForLog((l) => l.level === 'error' && l.msg === 'TLS: cannot load the new certificate or key; the previous one stays in service' && l['certificate'] === 'local_name reload.example.org');
      expect(await serialFor(imaps)).toBe(renewedSerial);
      spliced.write('m NOOP\r\n');
      expect((await spliced.until('m')).at(-1)).toMatch(/^m OK /);
      spliced.close();
      waiting.close();
    } finally {
      await px.stop();
    }
  });

  test('on SIGHUP (the real portier command, file watching off): the new certificate, the old session carries on', async () => {
    const dir = await makeTempDir('portier-sighup-');
    const port = await freePort('127.0.0.1');
    writeFileSync(join(dir, 'users'), users(backend));
    copyFileSync(old.certFile, join(dir, 'reload.pem'));
    copyFileSync(old.keyFile, join(dir, 'reload.key'));
    const text = config({
      ssl: 'yes',
      plaintext: false,
      extra: `${reloadConfig}ssl_watch_files: no\nworkers: 1\nadmin_socket: ''\n`,
      ports: { imap: 0, imaps: port, pop3: 0 },
    }).replaceAll('{{dir}}', dir);
    writeFileSync(join(dir, 'portier.yaml'), text);
    const proc = runPortierBin(['serve', '-c', join(dir, 'portier.yaml')]);
    try {
      const until = Date.now() + 15_000;
      while (!/"listening"/.test(proc.stdout())) {
        if (Date.now() > until || proc.child.exitCode !== null) throw new Error(`portier did not start:\n${proc.stdout()}\n${proc.stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const first = await serialFor(port);
      expect(first).toBe(serialOf(old));
      const session = await greeted(port, 'imap', { tls: { ca: [caPem], servername: 'reload.example.org' } });
      replace(dir, 'reload.key', renewed.keyFile);
      replace(dir, 'reload.pem', renewed.certFile);
      // File watching is off: without the signal nothing changes.
      await new Promise((r) => setTimeout(r, 700));
      expect(await serialFor(port)).toBe(first);
      proc.child.kill('SIGHUP');
      const until2 = Date.now() + 10_000;
      while ((await serialFor(port)) === first) {
        if (Date.now() > until2) throw new Error(`SIGHUP did not reload the certificate:\n${proc.stdout()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await serialFor(port)).toBe(serialOf(renewed));
      expect(proc.stdout()).toMatch(/TLS: certificates reloaded/);
      session.write('c CAPABILITY\r\n');
      expect((await session.until('c')).at(-1)).toMatch(/^c OK /);
      session.close();
    } finally {
      proc.child.kill('SIGTERM');
      await proc.exited;
    }
  });
});
