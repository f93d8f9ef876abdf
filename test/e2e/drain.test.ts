/**
 * R18, graceful drain of the real `portier serve` on SIGTERM: `/readyz` answers 503 at once
 * (so the load balancer stops sending), the listeners are closed (a new connection is refused,
 * never half-served), a client still logging in gets the goodbye, a proxied session keeps
 * working until it ends, and the process then exits 0 without waiting for shutdown_timeout.
 */
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { greeted, imapCommand } from '../support/clients.js';
import { passdbEntry, testConfig } from '../support/config.js';
import { acceptingLogins, startFakeImap, type FakeImap } from '../support/fake-imap.js';
import { freePort } from '../support/ports.js';
import { runPortierBin, type PortierProcess } from '../support/portier.js';
import { makeTempDir } from '../support/tmp.js';

let backend: FakeImap;
let proc: PortierProcess | undefined;

beforeAll(async () => {
  backend = await startFakeImap({ host: '127.0.0.2', respond: acceptingLogins() });
});

afterAll(async () => {
  if (proc !== undefined && proc.child.exitCode === null) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
  await backend?.close();
});

async function readyz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
  return res?.status ?? 0;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.5' });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

test('SIGTERM: /readyz 503 at once, no new connection, goodbye to the login, the proxied session finishes, exit 0', async () => {
  const dir = await makeTempDir('portier-drain-');
  const [imap, admin] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  writeFileSync(join(dir, 'users'), `alice:{PLAIN}alice-pw::::::proxy=y host=${backend.host} port=${backend.port}\n`);
  const file = join(dir, 'portier.yaml');
  writeFileSync(
    file,
    testConfig(['imap'], {
      settings: { workers: 1, shutdown_timeout: '20s', admin_listen: `127.0.0.1:${admin}`, admin_socket: `${dir}/admin.sock` },
      ports: { imap },
      passdb: passdbEntry('passwd-file', { args: `scheme=PLAIN ${dir}/users` }),
    }),
  );
  proc = runPortierBin(['serve', '-c', file]);
  for (let i = 0; i < 200 && (await readyz(admin)) !== 200; i++) await new Promise((r) => setTimeout(r, 50));
  expect(await readyz(admin)).toBe(200);

  const { c: proxied, reply } = await imapCommand(imap, 'a LOGIN alice alice-pw');
  expect(reply).toMatch(/^a OK /);
  const waiting = await greeted(imap);
  expect(waiting.greeting).toMatch(/^\* OK /);

  const t0 = Date.now();
  proc.child.kill('SIGTERM');
  let status = await readyz(admin);
  while (status === 200 && Date.now() - t0 < 2000) status = await readyz(admin);
  const notReadyAfter = Date.now() - t0;
  expect(status).toBe(503);
  expect(notReadyAfter).toBeLessThan(1000);
  // Listeners are closed: a new client is refused by the kernel, not greeted.
  expect(await refused(imap)).toBe(true);
  // The client still logging in is told and closed.
  expect(await waiting.line()).toBe('* BYE [UNAVAILABLE] Server shutting down.');
  await waiting.waitClosed();
  // The proxied session keeps working while the process drains; readiness stays off.
  proxied.write('b NOOP\r\n');
  expect(await proxied.line()).toBe('b OK fine');
  expect(await readyz(admin)).toBe(503);
  expect(proc.child.exitCode).toBeNull();
  // When it ends, the process exits at once (well inside shutdown_timeout), with 0.
  const closedAt = Date.now();
  proxied.close();
  expect(await proc.exited).toBe(0);
  expect(Date.now() - closedAt).toBeLessThan(5000);
  const msgs = proc.stdout().trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  expect(msgs).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
}, 60_000);
