/**
 * R28: `tcp_keepalive` arms TCP keepalive on both legs of a proxied session, so a peer that
 * disappears without a FIN (a NAT or load balancer dropping the flow, a dead phone) is found
 * by the kernel's probes and the session is released. Observed from outside, in the kernel's
 * own table (/proc/net/tcp): an idle socket with keepalive has its keepalive timer (type 2)
 * running, due within the configured time; with `tcp_keepalive: 0` no timer runs. It is
 * armed when the session first goes quiet, not at login: a session over in a moment pays nothing.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import { LineClient } from '../support/lines.js';
import { startPortier, type RunningPortier } from '../support/portier.js';
import { procNetAddr, procNetPort } from '../support/procs.js';

let backend: FakeImap;
const instances: RunningPortier[] = [];

beforeAll(async () => {
  backend = await startFakeImap({ host: '127.0.0.2', respond: acceptingLogins() });
});

afterAll(async () => {
  await Promise.all(instances.map((p) => p.stop()));
  await backend?.close();
});

interface TcpRow {
  local: string;
  remote: string;
  /** Timer kind: 0 none, 1 retransmit, 2 keepalive, ... */
  timer: number;
  /** Time left on it, in USER_HZ ticks (1/100 s). */
  when: number;
}

function tcpRows(): TcpRow[] {
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 5)
    .map((f) => {
      const [kind = '0', when = '0'] = (f[5] ?? '').split(':');
      return { local: f[1] ?? '', remote: f[2] ?? '', timer: parseInt(kind, 16), when: parseInt(when, 16) };
    });
}

/** Portier's two sockets of one proxied session: accepted from the client, connected to the backend. */
function sessionRows(px: RunningPortier, c: LineClient): { client: TcpRow; backendLeg: TcpRow } {
  const rows = tcpRows();
  const clientPort = c.socket.localPort ?? 0;
  const client = rows.find((r) => r.local === procNetAddr('127.0.0.1', px.port('imap')) && r.remote === procNetAddr('127.0.0.5', clientPort));
  const backendPeer = procNetAddr(backend.host, backend.port);
  // The backend's newest connection is this session's; portier's end of it has the backend as its remote.
  const conn = backend.connections.at(-1);
  const backendLeg = rows.find((r) => r.remote === backendPeer && r.local.endsWith(`:${procNetPort(conn?.socket.remotePort ?? 0)}`));
  if (client === undefined || backendLeg === undefined) throw new Error('sockets not found in /proc/net/tcp');
  return { client, backendLeg };
}

/**
 * A proxied session left quiet. `early`: its sockets 100 ms after the login reply; then polled
 * (up to 5 s) until both legs show a keepalive timer or the time is up (keepalive is armed
 * when the idle sweep first finds the session quiet, about one to two seconds after login).
 */
async function proxiedSession(keepalive: string, waitMs = 5000): Promise<{ early: { client: TcpRow; backendLeg: TcpRow }; client: TcpRow; backendLeg: TcpRow; c: LineClient }> {
  const px = await startPortier(
    testConfig(['imap'], { settings: { tcp_keepalive: keepalive } }),
    { users: `alice:{PLAIN}alice-pw::::::proxy=y host=${backend.host} port=${backend.port}\n` },
  );
  instances.push(px);
  const { c, reply } = await imapCommand(px, 'a LOGIN alice alice-pw');
  expect(reply).toMatch(/^a OK /);
  await new Promise((r) => setTimeout(r, 100));
  const early = sessionRows(px, c);
  let rows = early;
  for (const until = Date.now() + waitMs; Date.now() < until && (rows.client.timer !== 2 || rows.backendLeg.timer !== 2); ) {
    await new Promise((r) => setTimeout(r, 100));
    rows = sessionRows(px, c);
  }
  return { early, ...rows, c };
}

test('tcp_keepalive: 5s arms the keepalive timer on the client leg and the backend leg once the session is quiet', async () => {
  const { early, client, backendLeg, c } = await proxiedSession('5s');
  // Not yet 100 ms after the login: the idle sweep arms it about a second or two later.
  expect(early.client.timer).not.toBe(2);
  expect(early.backendLeg.timer).not.toBe(2);
  for (const row of [client, backendLeg]) {
    expect(row.timer).toBe(2);
    expect(row.when).toBeGreaterThan(0);
    expect(row.when).toBeLessThanOrEqual(500);
  }
  c.close();
});

test('tcp_keepalive: 0 leaves both legs without a keepalive timer (the control)', async () => {
  // Longer than the sweep takes to arm a quiet session with keepalive on.
  const { client, backendLeg, c } = await proxiedSession('0', 3000);
  expect(client.timer).toBe(0);
  expect(backendLeg.timer).toBe(0);
  c.close();
});

test('tcp_keepalive: an LMTP client connection is armed from the start (an MTA may wait between transactions)', async () => {
  const px = await startPortier(testConfig(['lmtp'], { settings: { tcp_keepalive: '5s' } }), { users: '' });
  instances.push(px);
  const c = await LineClient.connect(px.port('lmtp'), { localAddress: '127.0.0.5' });
  expect(await c.line()).toMatch(/^220 /);
  const clientPort = c.socket.localPort ?? 0;
  const row = tcpRows().find((r) => r.local === procNetAddr('127.0.0.1', px.port('lmtp')) && r.remote === procNetAddr('127.0.0.5', clientPort));
  expect(row?.timer).toBe(2);
  expect(row?.when).toBeLessThanOrEqual(500);
  c.close();
});
