/**
 * TLS from portier to real Dovecot backends that insist on TLS, with test-CA certificates:
 * passdb `ssl=yes|any-cert` and `starttls=yes|any-cert` for IMAP and POP3; verification
 * against ssl_client_ca_file / ssl_client_ca_dir only, and of the backend's name (`host`,
 * or `ssl_server_name` when host is an IP); SNI to the backend; an untrusted or wrong-name
 * certificate refused under ssl=yes and accepted under any-cert, as a temporary error logged
 * with the reason; no plaintext fallback when STARTTLS is missing; a client certificate
 * towards a backend that requires one.
 */
import { mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { greeted, imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { makeTestCa, sharedTestCa, type TestCa } from '../support/tlsca.js';
import { makeTempDir } from '../support/tmp.js';

let ca: TestCa;
let otherCa: TestCa;
/** Test-CA certificates; default certificate for wrong.backend.test (+ IP), imap.backend.test by SNI. */
let dTls: DovecotBackend;
/** A certificate from a CA portier does not trust. */
let dOther: DovecotBackend;
/** No TLS at all (so no STARTTLS offered). */
let dPlain: DovecotBackend;
/** Requires a client certificate from the test CA. */
let dCert: DovecotBackend;
let px: RunningPortier;
let pxOtherCa: RunningPortier;
let pxClientCert: RunningPortier;

const strictTls = { ssl: 'required' as const, disablePlaintextAuth: true, trustedNetworks: [] as string[] };
const ALICE = [{ user: 'alice', password: 'alice-pw' }];

function users(): string {
  const t = dTls.ports;
  const o = dOther.ports;
  const e = (name: string, fields: string): string => `${name}:{PLAIN}alice-pw::::::proxy=y destuser=alice ${fields}`;
  return [
    // Implicit TLS (IMAP).
    e('yes-name', `host=imap.backend.test hostip=127.0.0.3 port=${t.imaps} ssl=yes`),
    e('yes-ip', `host=127.0.0.3 port=${t.imaps} ssl=yes`),
    e('yes-sslname', `host=127.0.0.3 port=${t.imaps} ssl=yes ssl_server_name=imap.backend.test`),
    e('yes-wrongname', `host=127.0.0.3 port=${t.imaps} ssl=yes ssl_server_name=elsewhere.backend.test`),
    e('any-wrongname', `host=127.0.0.3 port=${t.imaps} ssl=any-cert ssl_server_name=elsewhere.backend.test`),
    e('yes-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.imaps} ssl=yes`),
    e('any-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.imaps} ssl=any-cert`),
    // STARTTLS (IMAP).
    e('st-name', `host=imap.backend.test hostip=127.0.0.3 port=${t.imap} starttls=yes`),
    e('st-wrongname', `host=127.0.0.3 port=${t.imap} starttls=yes ssl_server_name=elsewhere.backend.test`),
    e('st-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.imap} starttls=yes`),
    e('st-any-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.imap} starttls=any-cert`),
    e('st-plain', `host=127.0.0.2 port=${dPlain.ports.imap} starttls=yes`),
    e('no-tls', `host=127.0.0.3 port=${t.imap}`),
    // POP3: the same names for the other protocol's ports.
    e('p-yes-name', `host=imap.backend.test hostip=127.0.0.3 port=${t.pop3s} ssl=yes`),
    e('p-yes-wrongname', `host=127.0.0.3 port=${t.pop3s} ssl=yes ssl_server_name=elsewhere.backend.test`),
    e('p-any-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.pop3s} ssl=any-cert`),
    e('p-yes-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.pop3s} ssl=yes`),
    e('p-st-name', `host=imap.backend.test hostip=127.0.0.3 port=${t.pop3} starttls=yes`),
    e('p-st-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.pop3} starttls=yes`),
    e('p-st-any-untrusted', `host=imap.other.test hostip=127.0.0.4 port=${o.pop3} starttls=any-cert`),
    e('p-st-plain', `host=127.0.0.2 port=${dPlain.ports.pop3} starttls=yes`),
    // A backend that wants a client certificate.
    e('cert-needed', `host=imap.cert.test hostip=127.0.0.7 port=${dCert.ports.imaps} ssl=yes`),
    '',
  ].join('\n');
}

/** `extra`: the TLS settings toward backends (YAML lines). */
function config(extra: string): string {
  return testConfig(['imap', 'pop3'], { settings: { login_proxy_max_reconnects: 0, log_level: 'debug' }, extra: `${extra}\n` });
}

beforeAll(async () => {
  ca = await sharedTestCa();
  otherCa = await makeTestCa(await makeTempDir('portier-untrusted-ca-'));
  const wrong = await ca.issue('wrong.backend.test', { sans: ['wrong.backend.test', '127.0.0.3'] });
  const right = await ca.issue('imap.backend.test', { sans: ['imap.backend.test'] });
  const untrusted = await otherCa.issue('imap.other.test', { sans: ['imap.other.test', '127.0.0.4'] });
  const certBackend = await ca.issue('imap.cert.test', { sans: ['imap.cert.test'] });
  const portierClient = await ca.issue('portier-proxy');
  [dTls, dOther, dPlain, dCert] = await Promise.all([
    startDovecot({
      address: '127.0.0.3', users: ALICE, cert: wrong, ...strictTls,
      extraConf: `local_name imap.backend.test {\n  ssl_cert = <${right.certFile}\n  ssl_key = <${right.keyFile}\n}\n`,
    }),
    startDovecot({ address: '127.0.0.4', users: ALICE, cert: untrusted, ...strictTls }),
    startDovecot({ address: '127.0.0.2', users: ALICE, ssl: 'no' }),
    startDovecot({
      address: '127.0.0.7', users: ALICE, cert: certBackend, ...strictTls,
      extraConf: `ssl_ca = <${ca.caFile}\nssl_verify_client_cert = yes\nssl_require_crl = no\nauth_ssl_require_client_cert = yes\n`,
    }),
  ]);
  const caDir = join(await makeTempDir('portier-ca-dir-'), 'cas');
  mkdirSync(caDir);
  copyFileSync(ca.caFile, join(caDir, 'test-root.pem'));
  [px, pxOtherCa, pxClientCert] = await Promise.all([
    startPortier(config(`ssl_client_ca_file: ${ca.caFile}`), { users: users() }),
    startPortier(config(`ssl_client_ca_file: ${otherCa.caFile}`), { users: users() }),
    startPortier(config(`ssl_client_ca_dir: ${caDir}\nssl_client_cert: ${portierClient.certFile}\nssl_client_key: ${portierClient.keyFile}`), { users: users() }),
  ]);
});

afterAll(async () => {
  await Promise.all([px?.stop(), pxOtherCa?.stop(), pxClientCert?.stop()]);
  await Promise.all([dTls?.stop(), dOther?.stop(), dPlain?.stop(), dCert?.stop()]);
});

async function imapLogin(p: RunningPortier, user: string): Promise<string> {
  const { c, reply } = await imapCommand(p, `a LOGIN ${user} alice-pw`, { timeoutMs: 20_000 });
  c.close();
  return reply;
}

async function pop3Login(p: RunningPortier, user: string): Promise<string> {
  const c = await greeted(p, 'pop3');
  c.write(`USER ${user}\r\nPASS alice-pw\r\n`);
  expect(await c.line()).toBe('+OK');
  const reply = await c.line(20_000);
  c.close();
  return reply;
}

/** The backend logged alice in over TLS (Dovecot marks such logins `TLS`). */
async function backendSawTls(b: DovecotBackend, proto: 'imap' | 'pop3', from: number): Promise<void> {
  const line = await b.waitForLog(new RegExp(`${proto}-login: Info: Login: user=<alice>`), 5000, from);
  expect(line).toMatch(/, TLS[,:]/);
}

/** The refusal was logged with the TLS reason, for this portier user. */
async function loggedTlsFailure(p: RunningPortier, user: string, reason: RegExp): Promise<void> {
  await p.waitForLog((l) => l['failure'] === 'tls' && l['user'] === user && /proxy login failed: TLS with .* failed/.test(l.msg) && reason.test(l.msg));
}

const UNAVAILABLE = 'a NO [UNAVAILABLE] Account is temporarily unavailable.';
const POP3_UNAVAILABLE = '-ERR [SYS/TEMP] Account is temporarily unavailable.';

describe('ssl=yes (implicit TLS to the backend), IMAP', () => {
  test('host is a name: SNI picks the backend certificate for it, which is verified; login over TLS', async () => {
    const from = await dTls.logSize();
    expect(await imapLogin(px, 'yes-name')).toMatch(/^a OK /);
    await backendSawTls(dTls, 'imap', from);
  });

  test('host is an IP: no SNI, the certificate must carry that IP', async () => {
    const from = await dTls.logSize();
    expect(await imapLogin(px, 'yes-ip')).toMatch(/^a OK /);
    await backendSawTls(dTls, 'imap', from);
  });

  test('host is an IP with ssl_server_name: that name is sent as SNI and verified', async () => {
    expect(await imapLogin(px, 'yes-sslname')).toMatch(/^a OK /);
    // Without SNI Dovecot shows its default certificate (wrong.backend.test), which would fail.
    expect(await imapLogin(px, 'yes-wrongname')).toBe(UNAVAILABLE);
    await loggedTlsFailure(px, 'yes-wrongname', /does not match certificate's altnames|Hostname\/IP does not match/);
  });

  test('a wrong-name certificate is accepted under ssl=any-cert', async () => {
    const from = await dTls.logSize();
    expect(await imapLogin(px, 'any-wrongname')).toMatch(/^a OK /);
    await backendSawTls(dTls, 'imap', from);
  });

  test('an untrusted certificate is refused under ssl=yes (temporary error, reason logged), accepted under any-cert', async () => {
    expect(await imapLogin(px, 'yes-untrusted')).toBe(UNAVAILABLE);
    await loggedTlsFailure(px, 'yes-untrusted', /unable to (get local issuer|verify)|self-signed|certificate/i);
    const from = await dOther.logSize();
    expect(await imapLogin(px, 'any-untrusted')).toMatch(/^a OK /);
    await backendSawTls(dOther, 'imap', from);
  });

  test('only ssl_client_ca_file is trusted: with another CA there, the test-CA backend is refused and the other one accepted', async () => {
    expect(await imapLogin(pxOtherCa, 'yes-name')).toBe(UNAVAILABLE);
    await loggedTlsFailure(pxOtherCa, 'yes-name', /unable to (get local issuer|verify)|certificate/i);
    expect(await imapLogin(pxOtherCa, 'yes-untrusted')).toMatch(/^a OK /);
  });

  test('ssl_client_ca_dir works like ssl_client_ca_file', async () => {
    expect(await imapLogin(pxClientCert, 'yes-name')).toMatch(/^a OK /);
    expect(await imapLogin(pxClientCert, 'yes-untrusted')).toBe(UNAVAILABLE);
  });
});

describe('starttls=yes|any-cert, IMAP', () => {
  test('STARTTLS to the backend, its certificate verified by name; login over TLS', async () => {
    const from = await dTls.logSize();
    expect(await imapLogin(px, 'st-name')).toMatch(/^a OK /);
    await backendSawTls(dTls, 'imap', from);
  });

  test('wrong name or untrusted: refused under starttls=yes; untrusted accepted under starttls=any-cert', async () => {
    expect(await imapLogin(px, 'st-wrongname')).toBe(UNAVAILABLE);
    await loggedTlsFailure(px, 'st-wrongname', /altnames|does not match/);
    expect(await imapLogin(px, 'st-untrusted')).toBe(UNAVAILABLE);
    await loggedTlsFailure(px, 'st-untrusted', /certificate|verify/i);
    const from = await dOther.logSize();
    expect(await imapLogin(px, 'st-any-untrusted')).toMatch(/^a OK /);
    await backendSawTls(dOther, 'imap', from);
  });

  test('a backend that offers no STARTTLS is an error, never a plaintext login', async () => {
    const from = await dPlain.logSize();
    expect(await imapLogin(px, 'st-plain')).toBe('a NO [SERVERBUG] Account is temporarily unavailable.');
    await px.waitForLog((l) => l['user'] === 'st-plain' && /backend does not offer STARTTLS/.test(l.msg));
    await new Promise((r) => setTimeout(r, 300));
    expect(Buffer.from(await dPlain.readLog()).subarray(from).toString()).not.toMatch(/Login: user=<alice>/);
  });

  test('without ssl or starttls, a backend insisting on TLS refuses (and portier says why)', async () => {
    expect(await imapLogin(px, 'no-tls')).toBe('a NO [SERVERBUG] Account is temporarily unavailable.');
    await px.waitForLog((l) => l['user'] === 'no-tls' && /LOGINDISABLED/.test(l.msg));
  });
});

describe('POP3: the same rules', () => {
  test('ssl=yes by name over pop3s; wrong name refused; untrusted refused under yes, accepted under any-cert', async () => {
    const from = await dTls.logSize();
    expect(await pop3Login(px, 'p-yes-name')).toMatch(/^\+OK/);
    await backendSawTls(dTls, 'pop3', from);
    expect(await pop3Login(px, 'p-yes-wrongname')).toBe(POP3_UNAVAILABLE);
    await loggedTlsFailure(px, 'p-yes-wrongname', /altnames|does not match/);
    expect(await pop3Login(px, 'p-yes-untrusted')).toBe(POP3_UNAVAILABLE);
    expect(await pop3Login(px, 'p-any-untrusted')).toMatch(/^\+OK/);
  });

  test('starttls=yes (STLS) verified; untrusted refused, accepted under any-cert; no STLS offered is an error', async () => {
    const from = await dTls.logSize();
    expect(await pop3Login(px, 'p-st-name')).toMatch(/^\+OK/);
    await backendSawTls(dTls, 'pop3', from);
    expect(await pop3Login(px, 'p-st-untrusted')).toBe(POP3_UNAVAILABLE);
    await loggedTlsFailure(px, 'p-st-untrusted', /certificate|verify/i);
    expect(await pop3Login(px, 'p-st-any-untrusted')).toMatch(/^\+OK/);
    const plainFrom = await dPlain.logSize();
    expect(await pop3Login(px, 'p-st-plain')).toBe(POP3_UNAVAILABLE);
    await px.waitForLog((l) => l['user'] === 'p-st-plain' && /backend does not offer STLS/.test(l.msg));
    expect(Buffer.from(await dPlain.readLog()).subarray(plainFrom).toString()).not.toMatch(/Login: user=<alice>/);
  });
});

describe('a client certificate towards the backend (ssl_client_cert / ssl_client_key)', () => {
  test('a backend requiring one logs portier in when it presents it, and refuses it without', async () => {
    const from = await dCert.logSize();
    expect(await imapLogin(pxClientCert, 'cert-needed')).toMatch(/^a OK /);
    await backendSawTls(dCert, 'imap', from);
    expect(await imapLogin(px, 'cert-needed')).toMatch(/^a NO /);
    await dCert.waitForLog(/Client didn't present valid SSL certificate|didn't present|valid SSL certificate/, 5000, from);
  });
});
