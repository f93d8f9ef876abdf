/**
 * `workers: 2` through the real command: both workers share the listener, the primary's
 * /metrics adds up the workers' counters, a killed worker is replaced while the others keep
 * serving, and SIGTERM still exits 0.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { LineClient } from '../support/lines.js';
import { freePort } from '../support/ports.js';
import { runPortierBin } from '../support/portier.js';
import { makeTempDir } from '../support/tmp.js';

const run = promisify(execFile);

async function until<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('two workers share the listener, report metrics together, and are supervised', async () => {
  const dir = await makeTempDir('portier-cluster-');
  const [port, admin] = [await freePort(), await freePort()];
  writeFileSync(join(dir, 'users'), 'alice:{PLAIN}pw::::::proxy=y host=127.0.0.2 port=1 nopassword=y\n');
  const file = join(dir, 'portier.yaml');
  writeFileSync(file, `protocols: imap\nlisten: 127.0.0.1\nssl: no\nworkers: 2\nadmin_listen: 127.0.0.1:${admin}\nservice:\n  imap-login:\n    inet_listener:\n      imap: { port: ${port} }\n      imaps: { port: 0 }\npassdb:\n  - driver: passwd-file\n    args: scheme=PLAIN ${dir}/users\n`);
  const p = runPortierBin(['serve', '-c', file]);
  const lines = (): { msg: string; pid: number }[] =>
    p.stdout().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; pid: number });
  await until('start', () => lines().find((l) => l.msg === 'portier started'));
  const workerPids = lines().filter((l) => l.msg === 'worker started').map((l) => l.pid);
  expect(new Set(workerPids).size).toBe(2);

  for (let i = 0; i < 10; i++) {
    const c = await LineClient.connect(port);
    expect(await c.line()).toMatch(/^\* OK /);
    c.write('a LOGOUT\r\n');
    await c.waitClosed();
  }
  const metrics = async (): Promise<string> => (await run('curl', ['-s', `http://127.0.0.1:${admin}/metrics`])).stdout;
  // The primary asks every worker and adds their counters up.
  expect(await metrics()).toMatch(/portier_connections_total\{protocol="imap",listener="imap"\} 10/);
  expect((await run('curl', ['-s', `http://127.0.0.1:${admin}/readyz`])).stdout.trim()).toBe('ready');

  process.kill(workerPids[0] ?? 0, 'SIGKILL');
  await until('replacement', () => lines().filter((l) => l.msg === 'worker started').length >= 3 || undefined);
  expect(lines().some((l) => l.msg === 'worker died; starting a new one')).toBe(true);
  for (let i = 0; i < 4; i++) {
    const c = await LineClient.connect(port);
    expect(await c.line()).toMatch(/^\* OK /);
    c.close();
  }

  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
}, 60_000);
