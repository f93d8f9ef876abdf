/**
 * LMTP through portier to real Dovecot LMTP backends, with real clients (python3
 * smtplib.LMTP, swaks, raw sockets): recipients on two backends plus an unknown one, one
 * backend down, a 20 MB message byte for byte, pipelining, dot-stuffing, SIZE, loops (TTL
 * and self), XCLIENT both ways, STARTTLS from the client (and its injection defence) and to a
 * backend, destuser with ORCPT, local_backend for unknown users, shutdown.
 * Clients connect from 127.0.0.5 (untrusted) or 127.0.0.6 (an MTA in login_trusted_networks).
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { LineClient } from '../support/lines.js';
import { readReply, reply, smtplib, swaks } from '../support/lmtp-peers.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { sharedTestCa, type IssuedCert } from '../support/tlsca.js';
import { makeTempDir } from '../support/tmp.js';

const CLIENT_IP = '127.0.0.5';
const MTA_IP = '127.0.0.6';
let a: DovecotBackend;
let b: DovecotBackend;
let c: DovecotBackend;
let px: RunningPortier;
let local: RunningPortier;
let cert: IssuedCert;
let lmtpPort: number;
let spoolDir: string;

function users(): string {
  const at = (d: DovecotBackend, extra = ''): string => `proxy=y host=${d.host} port=${d.ports.lmtp}${extra}`;
  return [
    `alice@a.example:::::::${at(a)}`,
    `carol@a.example:::::::${at(a)}`,
    `bob@b.example:::::::${at(b)}`,
    `robert@b.example:::::::${at(b, ' destuser=dave@b.example')}`,
    `secure@b.example:::::::${at(b, ' starttls=y destuser=bob@b.example')}`,
    `plainonly@a.example:::::::${at(a, ' starttls=y destuser=alice@a.example')}`,
    `eve@c.example:::::::${at(c)}`,
    `frank@c.example:::::::${at(c)}`,
    `fwd@a.example:::::::${at(a, ' destuser=alice@a.example forward_origin=portier-test')}`,
    `self@x.example::::::proxy=y host=127.0.0.1 port=${lmtpPort}`,
    `noproxy@x.example:::::::`,
    '',
  ].join('\n');
}

function config(extra = ''): string {
  return `
protocols: lmtp
listen: 127.0.0.1
ssl: yes
ssl_cert: ${cert.certFile}
ssl_key: ${cert.keyFile}
ssl_client_ca_file: ${cert.caFile}
login_trusted_networks: ${MTA_IP}
lmtp_max_mail_size: 25M
mail_temp_dir: ${spoolDir}
log_level: debug
passdb:
  - driver: passwd-file
    args: scheme=PLAIN {{dir}}/users
${extra}`;
}

/** A message with CRLF lines, some of them starting with dots. */
function message(subject: string, body = 'Hello.\r\n'): Buffer {
  return Buffer.from(`From: sender@example.org\r\nTo: you@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${randomBytes(6).toString('hex')}@test>\r\n\r\n${body}`);
}

async function client(p: RunningPortier = px, from = CLIENT_IP): Promise<LineClient> {
  const l = await LineClient.connect(p.port('lmtp'), { localAddress: from });
  expect(await reply(l)).toMatch(/^220 \S+ portier ready\.$/);
  return l;
}

/** Messages in a user's INBOX whose Subject is `subject`. */
async function inbox(d: DovecotBackend, user: string, subject: string): Promise<Buffer[]> {
  return (await d.listMessages(user)).filter((m) => m.includes(`Subject: ${subject}\r\n`));
}

beforeAll(async () => {
  const ca = await sharedTestCa();
  cert = await ca.issue('portier-lmtp', { sans: ['127.0.0.1', 'localhost'] });
  const bCert = await ca.issue('lmtp-backend-b', { sans: ['127.0.0.3'] });
  spoolDir = await makeTempDir('portier-lmtp-spool-');
  // Backends trust portier (127.0.0.1) for XCLIENT; direct clients from 127.0.0.5 are not trusted.
  const trust = { trustedNetworks: ['127.0.0.1'], protocols: ['lmtp' as const] };
  [a, b, c] = await Promise.all([
    startDovecot({ ...trust, address: '127.0.0.2', users: [{ user: 'alice@a.example', password: 'x' }, { user: 'carol@a.example', password: 'x' }, { user: 'localonly@a.example', password: 'x' }] }),
    startDovecot({
      ...trust,
      address: '127.0.0.3',
      users: [{ user: 'bob@b.example', password: 'x' }, { user: 'dave@b.example', password: 'x' }],
      ssl: 'yes',
      cert: bCert,
      // Delivered-To from ORCPT shows which address the message was originally for.
      extraConf: 'lmtp_hdr_delivery_address = original\n',
    }),
    startDovecot({ ...trust, address: '127.0.0.4', users: [{ user: 'eve@c.example', password: 'x' }, { user: 'frank@c.example', password: 'x' }] }),
  ]);
  lmtpPort = await freePort('127.0.0.1');
  px = await startPortier(`${config()}service:\n  lmtp:\n    inet_listener:\n      lmtp: { port: ${lmtpPort} }\n`, { users: users() });
  local = await startPortier(`${config()}local_backend:\n  lmtp: ${a.host}:${a.ports.lmtp}\nservice:\n  lmtp:\n    inet_listener:\n      lmtp: { port: {{port}} }\n`, { users: users() });
});

afterAll(async () => {
  await px?.stop();
  await local?.stop();
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
});

/** Strip the Delivered-To line backend B adds (lmtp_hdr_delivery_address = original). */
function withoutDeliveredTo(m: Buffer): Buffer {
  return m.subarray(0, 14).toString() === 'Delivered-To: ' ? m.subarray(m.indexOf('\n') + 1) : m;
}

describe('LMTP fan-out to real Dovecot backends', () => {
  test('recipients on two backends plus an unknown one: 250/250/550, each mailbox holds the message once', async () => {
    const msg = message('fan-out');
    const r = await smtplib({ port: px.port('lmtp'), from: 'sender@example.org', rcpts: ['alice@a.example', 'bob@b.example', 'nobody@a.example'], message: msg });
    expect(r.error).toBeUndefined();
    expect(r.lhlo?.[0]).toBe(250);
    expect(r.rcpt.map((x) => x[0])).toEqual([250, 250, 550]);
    expect(r.rcpt[2]?.[1]).toBe("5.1.1 <nobody@a.example> User doesn't exist");
    expect(r.data.map((x) => x[0])).toEqual([250, 250]);
    expect(r.data[0]?.[1]).toMatch(/^2\.0\.0 <alice@a\.example> \S+ Saved$/);
    expect(r.data[1]?.[1]).toMatch(/^2\.0\.0 <bob@b\.example> \S+ Saved$/);
    const atA = await inbox(a, 'alice@a.example', 'fan-out');
    const atB = await inbox(b, 'bob@b.example', 'fan-out');
    expect(atA).toHaveLength(1);
    expect(atB).toHaveLength(1);
    expect(atA[0]).toEqual(msg);
    expect(withoutDeliveredTo(atB[0] ?? Buffer.alloc(0))).toEqual(msg);
  });
});
