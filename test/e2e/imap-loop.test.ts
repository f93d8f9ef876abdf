/**
 * Loop safety: a passdb pointing back at portier itself, two portier instances pointing at
 * each other, and a chain through a real Dovecot proxy all end in a refusal within about a
 * second, not in a connection explosion.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import { imapCommand } from '../support/clients.js';
import { testConfig } from '../support/config.js';
import { startDovecot, type DovecotBackend } from '../support/dovecot.js';
import { freePort } from '../support/ports.js';
import { startPortier, type RunningPortier } from '../support/portier.js';

const base = (port: number, users: string) => ({
  yaml: testConfig(['imap'], { settings: { login_trusted_networks: '127.0.0.0/8' }, ports: { imap: port } }),
  users,
});

let a: RunningPortier;
let b: RunningPortier;
let dovecotProxy: DovecotBackend;

beforeAll(async () => {
  const [pa, pb] = [await freePort(), await freePort()];
  const dport = await freePort('127.0.0.2');
  // A: self → itself; pingpong → B; chain → the Dovecot proxy.
  const ua = [`self:::::::proxy=y host=127.0.0.1 port=${pa} nopassword=y`, `pingpong:::::::proxy=y host=127.0.0.1 port=${pb} nopassword=y`, `chain:::::::proxy=y host=127.0.0.2 port=${dport} nopassword=y`, ''].join('\n');
  const ub = `pingpong:::::::proxy=y host=127.0.0.1 port=${pa} nopassword=y\n`;
  const ca = base(pa, ua);
  const cb = base(pb, ub);
  a = await startPortier(ca.yaml, { users: ca.users });
  b = await startPortier(cb.yaml, { users: cb.users });
  // A real Dovecot in proxy mode that sends every login back to portier A.
  dovecotProxy = await startDovecot({
    address: '127.0.0.2',
    ports: { imap: dport, pop3: await freePort('127.0.0.2'), lmtp: await freePort('127.0.0.2') },
    trustedNetworks: ['127.0.0.0/8'],
    extraConf: `passdb {\n  driver = static\n  args = proxy=y host=127.0.0.1 port=${pa} nopassword=y\n}\n`,
  });
});

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await dovecotProxy?.stop();
});

async function loginAt(px: RunningPortier, user: string): Promise<{ reply: string; ms: number }> {
  const { c, reply, ms } = await imapCommand(px, `t LOGIN ${user} pw`, { timeoutMs: 10_000 });
  c.close();
  return { reply, ms };
}

test('proxy aimed at portier itself fails with "Proxying loops to itself"', async () => {
  const { reply, ms } = await loginAt(a, 'self');
  expect(reply).toBe('t NO [SERVERBUG] Account is temporarily unavailable.');
  expect(ms).toBeLessThan(1000);
  await a.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('Proxying loops to itself'));
});

test('two instances pointing at each other stop within a second, after at most 5 hops', async () => {
  const { reply, ms } = await loginAt(a, 'pingpong');
  expect(reply).toMatch(/^t NO \[SERVERBUG\] /);
  expect(ms).toBeLessThan(1500);
  const started = [...a.logs(), ...b.logs()].filter((l) => l.msg.startsWith('Started proxying'));
  expect(started.length).toBe(0);
  const hops = [...a.logs(), ...b.logs()].filter((l) => l.user === 'pingpong' && l.msg.startsWith('Disconnected'));
  expect(hops.length).toBeLessThanOrEqual(5);
  expect([...a.logs(), ...b.logs()].some((l) => typeof l.msg === 'string' && l.msg.includes('TTL reached zero'))).toBe(true);
});

test('a chain through a Dovecot proxy is stopped too', async () => {
  const { reply, ms } = await loginAt(a, 'chain');
  // Dovecot sees portier's forwarded x-connected-ip/port as its own address and refuses at the
  // first hop ("Proxying loops to itself"); portier relays the temporary failure.
  expect(reply).toMatch(/^t NO \[(UNAVAILABLE|SERVERBUG)\] /);
  expect(ms).toBeLessThan(3000);
  expect(await dovecotProxy.readLog()).toMatch(/Proxying loops to itself|TTL reached zero/);
  expect(a.logs().filter((l) => l.msg.startsWith('Started proxying'))).toEqual([]);
});
